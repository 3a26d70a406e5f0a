/**
 * The CRDT field code the engine runs, handed to it by the field declarations (`yText()`,
 * `automergeDoc()` carry it) rather than imported by the core: an app without CRDT fields
 * does not bundle it.
 */
import { compileFields, fieldsOf, runCommand } from "./fields.js"
import { replicaFields } from "./replica.js"

export const crdtRuntime = { compileFields, fieldsOf, runCommand, replicaFields }

export type CrdtRuntime = typeof crdtRuntime
