/**
 * An in-process hub serving whole CRDT documents on its WebSocket routes, bound to
 * 127.0.0.1, for the endpoint tests: the connection's `token` is its principal (a hub with
 * users, so writer and presence ownership apply), the disk is memory (optionally slow). With
 * `tls`, the routes are attached to an https server of that key and certificate (wss://).
 */
import * as https from "node:https"
import { Hub } from "../../core/index.js"
import type { CrdtDocEngine } from "../../core/crdt-docs/engine.js"
import type { CrdtDocHost } from "../../core/crdt-docs/host.js"
import type { CrdtWorkLimits } from "../../core/crdt-docs/work-budget.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { WsServer, type WsRoute } from "../../adapters/ws/index.js"
import { systemRuntime } from "../../adapters/system/index.js"

export const crdtRoutesHub = async <R extends WsRoute & { close(): void }>(
  engines: ReadonlyArray<CrdtDocEngine<any>>,
  routesOf: (host: CrdtDocHost) => ReadonlyArray<R>,
  options: {
    readonly storage?: MemoryStorage
    readonly onEvent?: ConstructorParameters<typeof Hub>[0]["onEvent"]
    readonly work?: Partial<CrdtWorkLimits>
    readonly tls?: { readonly key: Buffer; readonly cert: Buffer }
  } = {},
) => {
  const hub = new Hub({
    machines: [], storage: options.storage ?? new MemoryStorage(), runtime: systemRuntime, sync: false,
    crdt: { engines, ...(options.work !== undefined ? { work: options.work } : {}) },
    authenticate: (hello) => ({ id: hello.credentials ?? "anonymous" }),
    ...(options.onEvent !== undefined ? { onEvent: options.onEvent } : {}),
  })
  const routes = routesOf(hub.crdtDocs)
  let app: https.Server | undefined
  if (options.tls !== undefined) {
    app = https.createServer(options.tls)
    await new Promise<void>((resolve) => app!.listen(0, "127.0.0.1", resolve))
  }
  const server = await WsServer.start(hub, app !== undefined ? { server: app, routes: [...routes] } : { listen: [{ host: "127.0.0.1", port: 0 }], routes: [...routes] })
  return {
    hub, server, routes,
    /** The URL of `path` ("/yjs/room", "/automerge") on this hub. */
    url: (path: string) => `${app !== undefined ? "wss" : "ws"}://127.0.0.1:${server.addresses()[0]!.port}${path}`,
    stop: async () => {
      for (const r of routes) r.close()
      await server.close()
      await hub.close()
      if (app === undefined) return
      app.closeAllConnections()
      await new Promise((resolve) => app!.close(resolve))
    },
  }
}
