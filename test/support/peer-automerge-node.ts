/**
 * A replica process for test/peer-automerge-sync-need.test.ts: holds an Automerge document
 * and syncs it with every peer that connects (listenWsLinks + AutomergeReplica.attach, the
 * documented pattern). Prints "PORT <n>", then "ALIVE" every 100 ms while it runs.
 */
import * as A from "@automerge/automerge"
import { listenWsLinks } from "../../adapters/peer/ws-listen.js"
import { AutomergeReplica } from "../../adapters/peer/index.js"

const replica = new AutomergeReplica(A.from({ title: "shared", items: ["a", "b"] as string[] }))
const listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, (link) => { replica.attach(link) })
console.log(`PORT ${listener.port}`)
setInterval(() => console.log("ALIVE"), 100)
setTimeout(() => process.exit(0), 20_000).unref()
process.on("SIGTERM", () => process.exit(0))
