/**
 * `npm start`: the Canon hub on its embedded LevelDB, serving the demo board. Builds the
 * board's browser files first (esbuild, in memory), then listens. Ctrl-C shuts down cleanly.
 */
import { resolve } from "node:path"
import { ConfigError, helpText, parseConfig } from "./config.js"
import { startHub } from "./start.js"
import { demoMachines } from "../demo/machines.js"
import { buildDemo } from "../demo/build.js"
import { demoPages } from "../demo/pages.js"

const main = async (): Promise<void> => {
  let config
  try {
    config = parseConfig(process.argv.slice(2), process.env, "npm start")
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message)
      process.exit(2)
    }
    throw e
  }
  if (config === "help") {
    console.log(helpText("npm start"))
    return
  }
  console.log("Building the board app (esbuild)...")
  const assets = await buildDemo()
  const running = await startHub(config, demoMachines, demoPages(assets))
  const url = running.url.replace(/\/$/, "")
  // Handlers before the banner: a signal right after it must still shut down cleanly.
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    console.log("\nStopping: closing connections and the store...")
    await running.close()
    console.log("Stopped.")
    process.exit(0)
  }
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
  console.log(`Canon hub listening on ${url}`)
  console.log(`  board:         ${url}/   (other boards: ${url}/#board=NAME)`)
  console.log(`  sync endpoint: ${running.syncUrl}`)
  console.log(`  hub status:    ${url}/status`)
  if ("paths" in running.crdt) {
    const ws = url.replace(/^http/, "ws")
    console.log(`  whole CRDT documents: ${running.crdt.paths.map((p) => `${ws}${p}`).join(", ")} (stock y-websocket and automerge-repo clients)`)
  } else {
    console.log(`  ${running.crdt.skipped}`)
  }
  console.log(`  data:          ${resolve(config.dataDir)} (LevelDB, ${config.sync ? "fsync on every commit" : "no fsync (--no-sync): a power loss can lose the last acknowledged commands"})`)
  console.log(`  app bundle:    built in ${assets.buildMs} ms (version ${assets.version})`)
  console.log("Press Ctrl-C to stop.")
}

main().catch((e: unknown) => {
  console.error(`canon: ${e instanceof Error ? e.message : String(e)}`)
  process.exit(1)
})
