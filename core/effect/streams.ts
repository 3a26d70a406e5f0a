/** Subscriptions as Streams: each subscribes when the stream starts and unsubscribes when it ends or is interrupted. */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Machine, StateOf } from "../machine.js"
import type { CanonClient, ClientStatus } from "../replica/client.js"
import type { Doc, DocEvents } from "../replica/doc.js"

/** Names of a document's events (see `Doc.on`). */
export type DocEventName = keyof DocEvents<unknown>

/** What event `K` of a document of machine `M` carries. */
export type DocEvent<M extends Machine<any, any>, K extends DocEventName> = Parameters<DocEvents<StateOf<M>>[K]>[0]

/** How a stream buffers when its consumer is slower than the events (Stream.callback's options). */
export interface BufferOptions {
  readonly bufferSize?: number
  // No "suspend": a listener cannot wait for the consumer (it would drop, as "dropping").
  readonly strategy?: "sliding" | "dropping"
}

const fromListener = <A>(
  subscribe: (emit: (a: A) => void, end: () => void) => () => unknown,
  options?: BufferOptions,
): Stream.Stream<A> =>
  Stream.callback<A>(
    (queue) =>
      Effect.acquireRelease(
        Effect.sync(() => subscribe((a) => void Queue.offerUnsafe(queue, a), () => void Queue.endUnsafe(queue))),
        (unsubscribe) => Effect.sync(() => void unsubscribe()),
      ),
    options,
  )

/** A stream of a document's listener that ends when the document closes (at once if it is closed). */
const fromDoc = <A>(doc: Doc<any>, subscribe: (emit: (a: A) => void) => () => unknown, options?: BufferOptions): Stream.Stream<A> =>
  fromListener<A>((emit, end) => {
    if (doc.isClosed) {
      end()
      return () => {}
    }
    const off = subscribe(emit)
    const offClosed = doc.on("closed", end)
    return () => {
      off()
      offClosed()
    }
  }, options)

/**
 * The document's view after each batch of changes (local submits, confirmations, rebases).
 * With `current: true` it starts with the view as it is now. It subscribes when its fiber
 * starts (a forked stream misses changes made before), and ends when the document closes.
 *
 * The view is one live object that the replica updates in place: every element is that same
 * object, read it (or copy it) when it arrives. A slow consumer skips to the newest view
 * (a sliding buffer of one), so memory stays bounded.
 */
export const changes = <M extends Machine<any, any>>(doc: Doc<M>, options?: { readonly current?: boolean }): Stream.Stream<StateOf<M>> =>
  fromDoc<StateOf<M>>(doc, (emit) => {
    const off = doc.subscribe(emit)
    if (options?.current === true) emit(doc.state)
    return off
  }, { bufferSize: 1, strategy: "sliding" })

/**
 * Every event `event` of the document ("rejected", "confirmed", "desync", "synced", "error",
 * "change"). Unbounded buffer unless `options` say otherwise. Ends when the document closes.
 */
export const events = <M extends Machine<any, any>, K extends DocEventName>(doc: Doc<M>, event: K, options?: BufferOptions): Stream.Stream<DocEvent<M, K>> =>
  fromDoc<DocEvent<M, K>>(doc, (emit) => doc.on(event, emit as DocEvents<StateOf<M>>[K]), options)

/**
 * The client's status: the current one first, then every change. Ends after "closed".
 */
export const status = (client: CanonClient): Stream.Stream<ClientStatus> =>
  fromListener<ClientStatus>((emit, end) => {
    const push = (s: ClientStatus) => {
      emit(s)
      if (s === "closed") end()
    }
    const off = client.onStatus(push)
    push(client.status)
    return off
  })
