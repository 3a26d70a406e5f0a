/**
 * Canon's Effect API: the same engine as the Promise API, with typed errors, scoped
 * resources and Streams. Clients and hubs are services whose layers close them when their
 * scope ends; `submit` fails with `CommandRejected` in the error channel; subscriptions are
 * Streams that unsubscribe when they end or are interrupted.
 *
 * @example
 * ```ts
 * import * as Effect from "effect/Effect"
 * import * as Stream from "effect/Stream"
 * import { CanonClientService, changes, open, submit } from "canon/effect"
 *
 * const program = Effect.gen(function* () {
 *   const doc = yield* open(Todo, "groceries")
 *   // `current: true` renders the view as it is too: the stream subscribes when its fiber starts, later.
 *   yield* Effect.forkChild(Stream.runForEach(changes(doc, { current: true }), (s) => Effect.sync(() => render(s))))
 *   const { seq } = yield* submit(doc, "add", { id: "t1", title: "Milk" }).pipe(
 *     Effect.catchTag("CommandRejected", (e) => Effect.succeed({ seq: -1, why: e.message })),
 *   )
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(CanonClientService.layer({ transport, runtime: systemRuntime }))))
 * ```
 */
export { CanonClientService, HubService } from "./services.js"
export { open, submit } from "./doc.js"
export { changes, events, status, type DocEventName, type DocEvent, type BufferOptions } from "./streams.js"
export { CanonError, CommandRejected, type CanonErrorCode, type RejectionCode } from "../errors.js"
