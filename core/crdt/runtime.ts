/**
 * The CRDT field code the engine runs, handed to it by the field declarations (`yText()`,
 * `automergeDoc()` carry it) rather than imported by the core: an app without CRDT fields
 * does not bundle it.
 */
import { compileFields, fieldsOf, runCommand, snapshotValue, takeEncodedFields } from "./fields.js"
import { CrdtOutbox, crdtHandles } from "./outbox.js"

export const crdtRuntime = { compileFields, fieldsOf, runCommand, snapshotValue, takeEncodedFields, CrdtOutbox, crdtHandles }

export type CrdtRuntime = typeof crdtRuntime
