/**
 * `canon serve`: the hub alone (no demo page), for apps of your own: the machines, and the
 * authenticate / authorize hooks, come from the `--machines` module.
 */
import { resolve } from "node:path"
import type http from "node:http"
import { parseConfig, helpText } from "../hub/config.js"
import { startHub } from "../hub/start.js"
import { loadModule } from "./load-machines.js"

const hubOnly = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
  if (req.url !== "/") return false
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" })
  res.end("Canon hub. Clients sync over WebSocket at /sync.\n")
  return true
}

export const serve = async (argv: ReadonlyArray<string>): Promise<"help" | "running"> => {
  const config = parseConfig(argv, process.env, "canon serve")
  if (config === "help") {
    console.log(helpText("canon serve"))
    return "help"
  }
  const served = await loadModule(config.machines)
  const running = await startHub(config, served.machines, hubOnly, served)
  // Handlers first: a signal right after the banner must still shut down cleanly.
  const stop = async () => {
    await running.close()
    process.exit(0)
  }
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
  const hooks = [served.authenticate && "authenticate", served.authorize && "authorize"].filter(Boolean)
  console.log(`Canon hub on ${running.url} (sync: ${running.syncUrl})`)
  console.log(`  machines: ${served.machines.map((m) => `${m.name} v${m.version}`).join(", ")}`)
  if (hooks.length > 0) console.log(`  auth:     ${hooks.join(", ")} from ${config.machines}`)
  console.log(`  data:     ${resolve(config.dataDir)} (${config.sync ? "fsync on every commit" : "no fsync: a power loss can lose the last acknowledged commands"})`)
  return "running"
}
