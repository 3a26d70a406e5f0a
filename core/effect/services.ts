/**
 * Services for the Effect API: a CanonClient and a Hub, each with a scoped constructor
 * (`make`) and a layer that closes it when the layer's scope ends.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { CanonError } from "../errors.js"
import { Hub, type HubOptions } from "../authority/hub.js"
import { CanonClient, type ClientOptions } from "../replica/client.js"
import { toCanonError } from "./errors.js"

/** The CanonClient of the current context. */
export class CanonClientService extends Context.Service<CanonClientService, CanonClient>()("canon/CanonClient") {
  /**
   * Opens a client (loads or creates its clientId, connects unless `autoConnect: false`)
   * and closes it when the scope closes. A storage failure while opening is a CanonError
   * with code "storage-failed".
   */
  static readonly make = (options: ClientOptions): Effect.Effect<CanonClient, CanonError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.tryPromise({ try: () => CanonClient.open(options), catch: (e) => toCanonError(e, "storage-failed") }),
      // A failed close (a transport that throws) is logged: it must not turn the program's result into a defect.
      (client) => Effect.tryPromise(() => client.close()).pipe(Effect.ignore({ log: "Warn", message: "Closing the Canon client failed" })),
    )

  /** A layer holding one client, closed (connection and documents) when the layer is released. */
  static readonly layer = (options: ClientOptions): Layer.Layer<CanonClientService, CanonError> =>
    Layer.effect(CanonClientService, CanonClientService.make(options))
}

/** The Hub of the current context. Attaching it to a server transport is the app's business. */
export class HubService extends Context.Service<HubService, Hub>()("canon/Hub") {
  /** Makes a hub and closes it (every connection and document) when the scope closes. */
  static readonly make = (options: HubOptions): Effect.Effect<Hub, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.sync(() => new Hub(options)),
      (hub) => Effect.tryPromise(() => hub.close()).pipe(Effect.ignore({ log: "Warn", message: "Closing the Canon hub failed" })),
    )

  /** A layer holding one hub, closed when the layer is released. Storage stays the caller's to close. */
  static readonly layer = (options: HubOptions): Layer.Layer<HubService> =>
    Layer.effect(HubService, HubService.make(options))
}
