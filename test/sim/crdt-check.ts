/**
 * The collaborative text's invariants (a SimText document, crdt-text.ts), checked once the
 * world has healed and settled. Every failure starts with "crdt:".
 *
 * - equal: the hub's text, a fresh replica's and every following replica's are the same;
 * - only markers: the text is a sequence of markers some replica inserted, each at most once
 *   (nothing appears that was never inserted; a merge never splits or repeats an insert);
 * - acknowledged insert: an insert whose merge command was confirmed is in the text, unless
 *   a delete whose command was confirmed covered it;
 * - acknowledged delete: a marker a confirmed delete covered is gone (a CRDT delete sticks);
 * - nothing unacknowledged: a marker in the text was carried by a confirmed command (an edit
 *   a crash lost before it was stored must not show up later);
 * - persisted: an insert whose command reached the replica's outbox (stored) was confirmed,
 *   or the hub refused what it carries and the app was told (`rejected`, not for what it
 *   needs: what the hub refused is lost);
 *   only one lost with the process before it was stored may be missing otherwise.
 *
 * A command told `resent` carried edits that went again in other commands: the typists move
 * them to the command that carries them now (crdt-text.ts). In an Automerge field they go in
 * a remake, which is not followed: such an edit may be in the text or not (an insert may be
 * there or not, and an acknowledged insert that such a delete covered may be gone).
 */
import { MARKER, isAutomergeField, label, type TextEdit, type TextLedger } from "./crdt-text.js"
import type { Ledger } from "./checker.js"

export interface TextView {
  readonly docId: string
  /** The text field checked. */
  readonly field: string
  /** Each peer's final text, or why it could not be read. */
  readonly texts: ReadonlyArray<{ readonly who: string; readonly text: string | { readonly error: string } }>
  readonly edits: TextLedger
  readonly ledger: Ledger
}

const MAX = 20
/** A text as failure lines show it: markers by label, cut at 160 characters. */
export const short = (s: string) => {
  const t = s.replace(MARKER, label)
  return t.length > 160 ? `${t.slice(0, 160)}... (${s.length} chars)` : t
}

export const checkText = (v: TextView): string[] => {
  const failures: string[] = []
  const fail = (s: string) => { if (failures.length < MAX) failures.push(`crdt: ${v.docId}: ${s}`) }
  const readable = v.texts.filter((t): t is { who: string; text: string } => typeof t.text === "string")
  for (const t of v.texts) if (typeof t.text !== "string") fail(`the text of ${t.who} cannot be read: ${t.text.error}`)
  const reference = readable[0]
  if (reference === undefined) return failures
  for (const t of readable.slice(1)) {
    if (t.text !== reference.text) fail(`${t.who}'s text differs from ${reference.who}'s: ${short(t.text)} vs ${short(reference.text)}`)
  }
  const text = reference.text

  const { confirmed, rejected, resent, submitted } = v.ledger
  // The ledger holds the newest command under a key: one lost unstored had its number reused.
  const carried = (e: TextEdit) => e.carrier !== undefined && submitted.get(e.carrier.key) === e.carrier.entry
  const acked = (e: TextEdit) => carried(e) && confirmed.has(e.carrier!.key)
  // Went again in a remake (Automerge), not followed: may be in the text or not.
  const remade = (e: TextEdit) => carried(e) && isAutomergeField(v.field) && resent.has(e.carrier!.key)
  // Refused by the hub for what it carries (the document full, the change too large), and the
  // app was told: lost, as it may be. Not one refused for what it needs (`crdt-missing-deps`,
  // invalid-args): that content goes again, and is lost only by a bug.
  const refused = (e: TextEdit) => carried(e) && !resent.has(e.carrier!.key) && rejected.has(e.carrier!.key) && rejected.get(e.carrier!.key) !== "invalid-args"
  const how = (e: TextEdit) => {
    if (e.carrier === undefined) return "never submitted"
    const { key, entry } = e.carrier
    if (!carried(e)) return `${key} lost unstored, its number reused`
    return confirmed.has(key) ? `${key} confirmed at seq ${confirmed.get(key)}` : rejected.has(key) ? `${key} rejected (${rejected.get(key)})` : resent.has(key) ? `${key} resent (${resent.get(key)}), its carrier after not followed` : `${key} never settled${entry.persisted ? " (stored)" : ""}`
  }

  // Only markers, each once, each inserted by someone.
  const present = new Map<string, number>()
  let covered = 0
  for (const m of text.matchAll(MARKER)) {
    if (m.index! !== covered) fail(`the text has characters no insert wrote at ${covered}: ${JSON.stringify(short(text.slice(covered, m.index!)))}`)
    covered = m.index! + m[0].length
    present.set(m[0], (present.get(m[0]) ?? 0) + 1)
  }
  if (covered !== text.length) fail(`the text has characters no insert wrote at ${covered}: ${JSON.stringify(short(text.slice(covered)))}`)
  for (const [marker, n] of present) {
    const insert = v.edits.inserts.get(marker)
    if (insert === undefined) fail(`${label(marker)} is in the text but no replica inserted it`)
    else if (!acked(insert) && !remade(insert)) fail(`${label(marker)} is in the text but its insert was never acknowledged (${how(insert)})`)
    if (n > 1) fail(`${label(marker)} is in the text ${n} times`)
  }

  // What acknowledged deletes removed, and what deletes that went again in a remake may have.
  const deletedBy = new Map<string, TextEdit>()
  const remadeDeletes = new Set<string>()
  for (const e of v.edits.edits) {
    if (e.kind === "delete" && !acked(e) && remade(e)) for (const m of e.markers) remadeDeletes.add(m)
    if (e.kind !== "delete" || !acked(e)) continue
    for (const m of e.markers) {
      if (deletedBy.has(m)) continue
      deletedBy.set(m, e)
      if (present.has(m)) fail(`${label(m)} is still in the text though ${e.replica}'s delete removed it (${how(e)})`)
    }
  }
  for (const [marker, e] of v.edits.inserts) {
    if (present.has(marker) || deletedBy.has(marker) || remadeDeletes.has(marker)) continue
    if (acked(e)) fail(`${e.replica}'s acknowledged insert ${label(marker)} (${how(e)}) is missing and no acknowledged delete removed it`)
    else if (carried(e) && e.carrier!.entry.persisted && !refused(e) && !remade(e)) fail(`${e.replica}'s insert ${label(marker)} was stored in its outbox but never acknowledged (${how(e)})`)
  }
  return failures
}
