/**
 * `canon/automerge`: Automerge-backed CRDT fields for machines.
 *
 * @example
 * ```ts
 * import { automergeDoc, automergeText } from "canon/automerge"
 * const Sketch = defineMachine({ name: "sketch", version: 1, initial: () => ({}), commands: {},
 *   crdt: { sketch: automergeDoc({ strokes: [] as number[][] }), notes: automergeText() } })
 * const doc = await client.open(Sketch, "s1")
 * doc.crdt.sketch.change((d) => { d.strokes.push([1, 2]) }) // becomes the field's merge command
 * doc.crdt.notes.splice(0, 0, "hi")
 * doc.crdt.sketch.doc.strokes                                 // the current Automerge document
 * ```
 */
import type { CrdtFieldDecl } from "../../core/crdt/engine.js"
import { crdtRuntime as runtime } from "../../core/crdt/runtime.js"
import { AutomergeHandle, AutomergeTextHandle, automergeEngine, type AutomergeFieldOptions } from "./engine.js"

export { AutomergeHandle, AutomergeTextHandle, automergeEngine, MAX_FIELD_BYTES, MAX_FIELD_CHANGES, MAX_FIELD_OPS, type AutomergeFieldOptions, type FieldStateBounds } from "./engine.js"
export { crdtReason, type CrdtReason, type CrdtEngine, type CrdtField } from "../../core/crdt/engine.js"

/**
 * An Automerge document field starting as `initial` (plain data; part of the machine's
 * fingerprint, so every replica starts from the same first change).
 */
export const automergeDoc = <T extends Record<string, unknown>>(initial: T, options?: AutomergeFieldOptions): CrdtFieldDecl<AutomergeHandle<T>> =>
  ({ runtime, engine: automergeEngine<T, AutomergeHandle<T>>("doc", initial, (d) => new AutomergeHandle(d), options) })

/** An Automerge text field: a document `{ text }` with `handle.text` and `handle.splice`. */
export const automergeText = (options?: AutomergeFieldOptions): CrdtFieldDecl<AutomergeTextHandle> =>
  ({ runtime, engine: automergeEngine<{ text: string }, AutomergeTextHandle>("text", { text: "" }, (d) => new AutomergeTextHandle(d), options) })
