/**
 * Starts a hub: one HTTP server that answers pages and upgrades WebSocket connections on
 * /sync, LevelDB storage, the Hub. Returns a handle that shuts everything down in order.
 * Whole CRDT documents are served beside it to stock clients: y-websocket on /yjs/<room>,
 * automerge-repo on /automerge, when yjs and @automerge/automerge are installed (they are
 * optional peers of the package: without them the hub serves machines only, and says so).
 *
 * The port is bound before the data directory is opened, so a busy port leaves nothing on
 * disk; if anything fails after that, a data directory this start created is removed again.
 */
import http from "node:http"
import https from "node:https"
import { mkdirSync, readFileSync, rmSync } from "node:fs"
import { resolve } from "node:path"
import { getHeapStatistics } from "node:v8"
import { Hub, type Authenticate, type Authorize, type KVStore, type Machine } from "../../core/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import {
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_REQUEST_TIMEOUT_MS, SocketCap, WsServer, boundPipelining, closeUpgradesUntilReady, proxyTrust, requestDeadlines, socketCapFor,
} from "../../adapters/ws/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import type { HubConfig } from "./config.js"
import { requestUrl } from "./request-url.js"
import { listen } from "./listen.js"
import { browserGuard, hostAllowed, misdirectedText, originAllowed, refusedOriginText } from "./browser-guard.js"
import { defaultMaxSockets, openFileLimit } from "./socket-budget.js"

export interface RunningHub {
  readonly url: string
  readonly syncUrl: string
  /** The CRDT endpoints served (e.g. ["/yjs", "/automerge"]), or why there are none. */
  readonly crdt: { readonly paths: ReadonlyArray<string> } | { readonly skipped: string }
  readonly hub: Hub
  /** What the hub's WebSockets hold unsent together, its bound, and the sockets cut to keep it (`--max-unsent-mib`). */
  unsentBytes(): WsServer["unsentBytes"]
  close(): Promise<void>
}

/** Answers a request (true) or leaves it (false, a 404). `storage` is the hub's store, for read-only pages. */
export type PageHandler = (req: http.IncomingMessage, res: http.ServerResponse, hub: Hub, storage?: KVStore) => boolean

/** The app's say on who connects and what they may do (a `--machines` module may export them). */
export interface AuthHooks {
  readonly authenticate?: Authenticate | undefined
  readonly authorize?: Authorize | undefined
}

/**
 * How long an HTTP socket may idle before its request arrives: page requests and upgrades
 * alike (a browser's preconnected socket is reopened when needed). Node's defaults never
 * close a socket that sends no byte, and allow 60 s for a request's headers.
 */
const REQUEST_TIMEOUT_MS = DEFAULT_REQUEST_TIMEOUT_MS

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

/**
 * Every TCP socket counts, from accept to close, whatever it becomes (adapters/ws/socket-cap.ts):
 * a page socket, one that sends nothing, a WebSocket (which the WebSocket cap counts too).
 * A trusted proxy's peer address is many clients: held to the total only.
 */
const socketCap = (config: HubConfig): SocketCap =>
  new SocketCap({
    perAddress: config.maxSocketsPerAddress ?? socketCapFor(config.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
    total: config.maxSockets ?? defaultMaxSockets(openFileLimit()),
    ipv6Prefix: config.ipv6Prefix,
    exempt: proxyTrust(config.trustProxy).isProxy,
  })

const closeServer = (server: http.Server): Promise<void> =>
  new Promise<void>((r) => {
    server.close(() => r())
    server.closeAllConnections()
  })

export const startHub = async (config: HubConfig, machines: ReadonlyArray<Machine<any, any>>, pages: PageHandler, auth: AuthHooks = {}): Promise<RunningHub> => {
  const tls = config.tls === undefined ? undefined : readTls(config.tls)
  let hub: Hub | undefined
  const guard = browserGuard(config.host, config.publicUrl, config.allowOrigins ?? [])
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!hostAllowed(guard, req)) {
      // DNS rebinding: another site's name made to resolve here must not read the hub's pages.
      res.writeHead(421, { "Content-Type": "text/plain" })
      res.end(`${misdirectedText(guard)}\n`)
    } else if (req.url?.split("?")[0] === "/sync") {
      // A WebSocket endpoint: a browser whose upgrade failed asks here over HTTP to tell a
      // wrong path (404) from a hub that is busy or restarting (adapters/ws/client-browser.ts).
      res.writeHead(426, { "Content-Type": "text/plain", "Upgrade": "websocket" })
      res.end("This path speaks WebSocket (Canon sync).\n")
    } else if (hub === undefined) {
      res.writeHead(503, { "Content-Type": "text/plain", "Retry-After": "1" })
      res.end("The hub is starting.\n")
    } else {
      // A page that throws answers this request only: it must never take the process down.
      let served: boolean | "threw"
      try {
        served = pages(req, res, hub, storage!)
      } catch {
        served = "threw"
      }
      if (served === true) return
      const bad = served === "threw" || requestUrl(req) === undefined
      if (!res.headersSent) res.writeHead(bad ? 400 : 404, { "Content-Type": "text/plain" })
      res.end(bad ? "Bad request.\n" : "Not found.\n")
    }
  }
  const options = requestDeadlines(REQUEST_TIMEOUT_MS)
  const server: http.Server = tls === undefined ? http.createServer(options, handler) : https.createServer({ ...options, ...tls }, handler)
  server.setTimeout(REQUEST_TIMEOUT_MS)
  boundPipelining(server)
  socketCap(config).attach(server)
  // Bind first: a busy port must fail before anything is written to disk.
  const port = await listen(server, config.host, config.port)
  // Clients that connect before the hub is ready are closed with 1013 and come back.
  const ready = closeUpgradesUntilReady(server)
  // Only what this start itself created may be removed on failure: a directory another hub
  // created a moment ago (two starts on a new data directory) is that hub's live store.
  let created: string | undefined
  try {
    created = mkdirSync(resolve(config.dataDir), { recursive: true })
  } catch (e) {
    await closeServer(server)
    throw e
  }
  let storage: LevelStorage | undefined
  let ws: WsServer | undefined
  try {
    storage = await LevelStorage.open(config.dataDir, { sync: config.sync })
    const crdt = await crdtEndpoints()
    hub = new Hub({
      machines, storage, runtime: systemRuntime, sync: config.sync, authenticate: auth.authenticate, authorize: auth.authorize,
      ...(config.maxDocumentMib !== undefined ? { maxDocumentBytes: config.maxDocumentMib * 2 ** 20 } : {}),
      // Half of the heap this process has (node --max-old-space-size raises it): the rest is
      // for connections, buffers and what the estimates miss. An out-of-memory hub crashes.
      maxHeldBytes: Math.floor(getHeapStatistics().heap_size_limit / 2),
      ...("engines" in crdt ? { crdt: { engines: crdt.engines } } : {}),
    })
    const routes = "engines" in crdt ? crdt.routes(hub) : []
    const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host
    const url = config.publicUrl ?? `${tls === undefined ? "http" : "https"}://${shownHost}:${port}`
    const syncUrl = `${url.replace(/^http/, "ws").replace(/\/$/, "")}/sync`
    ready()
    ws = new WsServer(hub, {
      server, path: "/sync", publicUrl: syncUrl,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress, trustProxy: config.trustProxy, ipv6Prefix: config.ipv6Prefix,
      ...(config.maxUnsentMib !== undefined ? { maxUnsentBytes: config.maxUnsentMib * 2 ** 20 } : {}),
      routes,
      // Another site's page in a visitor's browser must not connect as a client of its own.
      verifyUpgrade: (req) =>
        !hostAllowed(guard, req) ? { status: 421, reason: misdirectedText(guard) } : originAllowed(guard, req) || { status: 403, reason: refusedOriginText(String(req.headers.origin).slice(0, 200)) },
    })
    const [running, openedHub, openedWs] = [storage, hub, ws]
    return {
      url,
      syncUrl,
      hub: openedHub,
      unsentBytes: () => openedWs.unsentBytes,
      crdt: "engines" in crdt ? { paths: routes.map((r) => r.prefix) } : crdt,
      close: async () => {
        for (const r of routes) r.close()
        await openedWs.close()
        await openedHub.close()
        await closeServer(server)
        await running.close()
      },
    }
  } catch (e) {
    ready()
    await ws?.close()
    await hub?.close()
    await closeServer(server)
    await storage?.close()
    // Never after a lock failure (the store is another process's), and a failed cleanup must not hide why the start failed.
    const locked = (e as { code?: unknown })?.code === "storage-in-use"
    if (created !== undefined && !locked) {
      try {
        rmSync(created, { recursive: true, force: true })
      } catch {
        // the start's own error says what went wrong
      }
    }
    throw e
  }
}

type CrdtRoute = { readonly prefix: string; close(): void } & import("../../adapters/ws/index.js").WsRoute

/**
 * The CRDT engines and endpoints, loaded only if their libraries are installed (a dynamic
 * import: the hub must start without them).
 */
const crdtEndpoints = async (): Promise<
  { readonly engines: ReadonlyArray<import("../../core/crdt-docs/engine.js").CrdtDocEngine<any>>; routes(hub: Hub): CrdtRoute[] } | { readonly skipped: string }
> => {
  try {
    const y = await import("../../adapters/yjs-server/index.js")
    const a = await import("../../adapters/automerge-server/index.js")
    return {
      engines: [y.yjsDocEngine(), a.automergeDocEngine()],
      routes: (hub) => [y.yjsRoute(hub.crdtDocs), a.automergeRoute(hub.crdtDocs)] as CrdtRoute[],
    }
  } catch (e) {
    return { skipped: `whole CRDT documents are off: ${e instanceof Error ? e.message : String(e)} (install yjs and @automerge/automerge to serve them)` }
  }
}
