/**
 * The part every hub child process of the chaos scenarios shares (wide-hub-process.ts,
 * snapshot-hub-process.ts): open LevelDB and the hub, listen on 127.0.0.1, retrying for up to
 * 5 s while a SIGKILLed predecessor still holds the port or LevelDB's lock; print
 * `READY <port> <pid>` once it listens; on SIGTERM or SIGINT close the server, the hub and the
 * store, print `STOPPED` and exit 0.
 */
import type { Hub } from "../../core/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { WsServer } from "../../adapters/ws/index.js"
import { say, sleep } from "./harness.js"

export const serveHubUntilStopped = async (name: string, dataDir: string, port: number, sync: boolean, makeHub: (storage: LevelStorage) => Hub): Promise<void> => {
  let storage: LevelStorage | undefined
  let server: WsServer | undefined
  let hub: Hub | undefined
  const deadline = Date.now() + 5_000
  for (let attempt = 0; server === undefined; attempt++) {
    try {
      storage ??= await LevelStorage.open(dataDir, { sync })
      hub ??= makeHub(storage)
      server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port }] })
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      // The port, or LevelDB's lock, of a process that was just killed: wait a little.
      if (/in use/.test(message) && Date.now() < deadline) {
        process.stderr.write(`${name}: ${message} (retrying)\n`)
        await sleep(50 + attempt * 20)
        continue
      }
      process.stderr.write(`${name}: ${message}\n`)
      process.exit(1)
    }
  }
  say("READY", server.addresses()[0]!.port, process.pid)
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await server!.close()
    await hub!.close()
    await storage!.close()
    say("STOPPED")
    process.exit(0)
  }
  process.on("SIGTERM", () => void stop())
  process.on("SIGINT", () => void stop())
}
