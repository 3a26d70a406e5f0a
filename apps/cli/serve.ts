/**
 * `canon serve`: the hub alone (no demo page), for apps of your own.
 */
import { resolve } from "node:path"
import type http from "node:http"
import { parseConfig, helpText } from "../hub/config.js"
import { startHub } from "../hub/start.js"
import { loadMachines } from "./load-machines.js"

const hubOnly = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
  if (req.url !== "/") return false
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" })
  res.end("Canon hub. Clients sync over WebSocket at /sync.\n")
  return true
}

export const serve = async (argv: ReadonlyArray<string>): Promise<void> => {
  const config = parseConfig(argv, process.env)
  if (config === "help") {
    console.log(helpText)
    return
  }
  const machines = await loadMachines(config.machines)
  const running = await startHub(config, machines, hubOnly)
  // Handlers first: a signal right after the banner must still shut down cleanly.
  const stop = async () => {
    await running.close()
    process.exit(0)
  }
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
  console.log(`Canon hub on ${running.url} (sync: ${running.syncUrl})`)
  console.log(`  machines: ${machines.map((m) => `${m.name} v${m.version}`).join(", ")}`)
  console.log(`  data:     ${resolve(config.dataDir)}`)
}
