/**
 * A machine's Automerge field as the hub holds it, for tests that send it untrusted changes
 * and weigh them: `send` validates a change as from `clientId` (throwing on a refusal), `saved`
 * is the byte length of the save the field encodes (what a document's bound measures).
 */
import { AutomergeHandle, automergeEngine } from "../../adapters/automerge/engine.js"
import { decodeCanonical } from "../../core/canonical.js"

export const hubField = <T extends object>(initial: T) => {
  const field = automergeEngine("doc", initial, (d) => new AutomergeHandle(d)).create()
  const send = (u: Uint8Array, clientId = "w") => {
    const r = field.validate([u], { clientId, trusted: false })
    if (!r.ok) throw new Error(JSON.stringify(r))
    return r.update
  }
  const saved = () => (decodeCanonical(field.encode()) as [string, Uint8Array, unknown])[1].length
  return { field, send, saved }
}
