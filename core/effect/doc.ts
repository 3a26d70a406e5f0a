/** Documents as Effects: open one through the client service, submit commands. */
import * as Effect from "effect/Effect"
import { CanonError, CommandRejected } from "../errors.js"
import type { ArgsOf, CommandName, Machine } from "../machine.js"
import type { Doc, Receipt } from "../replica/doc.js"
import { toCanonError } from "./errors.js"
import { CanonClientService } from "./services.js"

/**
 * Opens a document with the client of the context (see `CanonClient.open`). Opening the same
 * docId again gives the same Doc; another machine for it fails with "machine-mismatch".
 * The document lives as long as its client.
 */
export const open = <M extends Machine<any, any>>(machine: M, docId: string): Effect.Effect<Doc<M>, CanonError, CanonClientService> =>
  CanonClientService.use((client) =>
    Effect.tryPromise({ try: () => client.open(machine, docId), catch: (e) => toCanonError(e, "storage-failed") }))

/**
 * Submits a command when the Effect runs (not when it is made), applies it locally at once,
 * and succeeds with the entry's seq once the authority confirms it. Fails with
 * CommandRejected when the authority (or, for invalid arguments or an unknown name, the
 * replica) refuses it, and with a CanonError ("closed") when the document is closed.
 *
 * Interrupting the Effect only stops the waiting: the command stays submitted.
 */
export const submit = <M extends Machine<any, any>, K extends CommandName<M>>(
  doc: Doc<M>,
  name: K,
  args: ArgsOf<M, K>,
): Effect.Effect<{ readonly seq: number }, CommandRejected | CanonError> =>
  Effect.suspend((): Effect.Effect<{ readonly seq: number }, CommandRejected | CanonError> => {
    let receipt: Receipt
    try {
      receipt = doc.submit(name, args)
    } catch (e) {
      return e instanceof CanonError ? Effect.fail(e) : Effect.die(e)
    }
    return Effect.callback<{ readonly seq: number }, CommandRejected | CanonError>((resume) => {
      receipt.then(
        (r) => resume(Effect.succeed(r)),
        // A refusal of the client or a close before confirmation is a CanonError, typed too.
        (e) => resume(e instanceof CommandRejected || e instanceof CanonError ? Effect.fail(e) : Effect.die(e)),
      )
    })
  })
