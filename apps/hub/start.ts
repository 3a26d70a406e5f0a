/**
 * Starts a hub: LevelDB storage, the Hub, one HTTP server that answers pages and upgrades
 * WebSocket connections on /sync. Returns a handle that shuts everything down in order.
 */
import http from "node:http"
import https from "node:https"
import { readFileSync } from "node:fs"
import { Hub, type Machine } from "../../core/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { WsServer } from "../../adapters/ws/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import type { HubConfig } from "./config.js"

export interface RunningHub {
  readonly url: string
  readonly syncUrl: string
  readonly hub: Hub
  close(): Promise<void>
}

export type PageHandler = (req: http.IncomingMessage, res: http.ServerResponse, hub: Hub) => boolean

const listen = (server: http.Server, host: string, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new Error(`Port ${port} on ${host} is in use: stop the other process or pass --port.`))
      else if (e.code === "EACCES") reject(new Error(`Not allowed to listen on ${host}:${port}: use a port above 1023 or run with the rights to bind it.`))
      else if (e.code === "EADDRNOTAVAIL") reject(new Error(`${host} is not an address of this machine: pass --host 127.0.0.1 or 0.0.0.0.`))
      else reject(e)
    })
    server.listen(port, host, () => resolve((server.address() as { port: number }).port))
  })

/** Reads the PEM files, or says which one cannot be used and why. */
const readTls = (files: { readonly cert: string; readonly key: string }): { cert: Buffer; key: Buffer } => {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (e) {
      throw new Error(`Cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}.`)
    }
  }
  const tls = { cert: read("certificate", files.cert), key: read("private key", files.key) }
  try {
    https.createServer(tls).close()
  } catch (e) {
    throw new Error(`The certificate ${files.cert} or key ${files.key} is not usable PEM: ${(e as Error).message}`)
  }
  return tls
}

export const startHub = async (config: HubConfig, machines: ReadonlyArray<Machine<any, any>>, pages: PageHandler): Promise<RunningHub> => {
  const tls = config.tls === undefined ? undefined : readTls(config.tls)
  const storage = await LevelStorage.open(config.dataDir, { sync: config.sync })
  const hub = new Hub({ machines, storage, runtime: systemRuntime, sync: config.sync })
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!pages(req, res, hub)) {
      res.writeHead(404, { "Content-Type": "text/plain" })
      res.end("Not found.\n")
    }
  }
  const server: http.Server = tls === undefined ? http.createServer(handler) : https.createServer(tls, handler)
  let port: number
  try {
    port = await listen(server, config.host, config.port)
  } catch (e) {
    await storage.close()
    throw e
  }
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host
  const url = config.publicUrl ?? `${tls === undefined ? "http" : "https"}://${shownHost}:${port}`
  const syncUrl = `${url.replace(/^http/, "ws").replace(/\/$/, "")}/sync`
  const ws = new WsServer(hub, { server, path: "/sync", publicUrl: syncUrl })
  return {
    url,
    syncUrl,
    hub,
    close: async () => {
      await ws.close()
      await hub.close()
      await new Promise<void>((r) => server.close(() => r()))
      await storage.close()
    },
  }
}
