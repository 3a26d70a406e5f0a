/**
 * One replica of a Yjs document in its own Node process, for the WebSocket peer-link test.
 * argv: "listen" (prints "PORT <n>") or "connect <port>", then a word to type. It types its
 * word into the shared text, syncs with the other process over the WebSocket peer link, and
 * prints "TEXT <json>" whenever the text changes.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { connectWsLink, YSyncSession } from "../../adapters/peer/index.js"
import { listenWsLinks } from "../../adapters/peer/ws-listen.js"

const [mode, arg, word] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText("t")
// Typed before any link exists: an offline edit the handshake must carry.
text.insert(0, `${word ?? arg}|`)
doc.on("update", () => console.log(`TEXT ${JSON.stringify(text.toString())}`))
if (mode === "listen") {
  const listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, (link) => new YSyncSession(doc, link))
  console.log(`PORT ${listener.port}`)
} else {
  const link = connectWsLink(`ws://127.0.0.1:${arg}/`, { WebSocket })
  const session = new YSyncSession(doc, link)
  await session.whenSynced()
  // A live edit after the handshake.
  text.insert(text.length, "live|")
}
console.log(`TEXT ${JSON.stringify(text.toString())}`)
setTimeout(() => process.exit(0), 60_000).unref()
process.on("SIGTERM", () => process.exit(0))
