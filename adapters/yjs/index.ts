/**
 * `canon/yjs`: Yjs-backed CRDT fields for machines.
 *
 * @example
 * ```ts
 * import { yText } from "canon/yjs"
 * const Card = defineMachine({ name: "card", version: 1, initial: () => ({ title: "" }), commands: { ... },
 *   crdt: { description: yText() } })
 * const doc = await client.open(Card, "c1")
 * doc.crdt.description.insert(0, "hello") // a live Y.Text: bind it to an editor
 * ```
 * Local changes to the field are captured from its Y.Doc's update event and submitted as the
 * field's merge command (coalesced while one is in flight).
 */
import type * as Y from "yjs"
import type { CrdtFieldDecl } from "../../core/crdt/engine.js"
import { crdtRuntime as runtime } from "../../core/crdt/runtime.js"
import { yjsEngine, type YFieldOptions } from "./engine.js"

export { MAX_FIELD_STRUCTS, yjsEngine, type YFieldOptions, type YKind } from "./engine.js"
export { crdtReason, type CrdtReason, type CrdtEngine, type CrdtField } from "../../core/crdt/engine.js"

/** A collaborative text field: the app gets a live `Y.Text`. */
export const yText = (options?: YFieldOptions): CrdtFieldDecl<Y.Text> => ({ runtime, engine: yjsEngine<Y.Text>("text", options) })
/** A collaborative map field: the app gets a live `Y.Map`. */
export const yMap = <V = unknown>(options?: YFieldOptions): CrdtFieldDecl<Y.Map<V>> => ({ runtime, engine: yjsEngine<Y.Map<V>>("map", options) })
/** A collaborative array field: the app gets a live `Y.Array`. */
export const yArray = <V = unknown>(options?: YFieldOptions): CrdtFieldDecl<Y.Array<V>> => ({ runtime, engine: yjsEngine<Y.Array<V>>("array", options) })
