/**
 * The engine mutations the simulator must catch (npm run sim:mutants). Each is a textual
 * patch: in `file`, the exact `anchor` text (it must occur exactly once) is replaced. The
 * engine keeps changing, so anchors are short; refresh them here after a merge. A mutant
 * marked `needsEngineSupport` targets engine code that may not exist yet: a missing anchor
 * then shows as "needs engine support" instead of failing the run.
 *
 * `simArgs` widen the world a mutant runs in beyond MUTANT_WORLD when catching it needs more
 * (the hostile client, say).
 */

export interface Patch {
  readonly file: string
  readonly anchor: string
  readonly replacement: string
}

export interface Mutant {
  readonly name: string
  /** What the mutation breaks, in a few words. */
  readonly breaks: string
  readonly patches: ReadonlyArray<Patch>
  readonly needsEngineSupport?: boolean
  readonly simArgs?: ReadonlyArray<string>
}

/**
 * The world mutants run in: every knob the engine passes today. Widen it (down to no flags:
 * the whole world) as the engine learns to pass more of the simulator.
 */
export const MUTANT_WORLD: ReadonlyArray<string> = ["--hostile", "0", "--app-bugs", "0", "--replica-write-failures", "0"]

const AUTH = "core/authority/doc-authority.ts"
const RS = "core/replica/replica-state.ts"
const DOC = "core/replica/doc.ts"

export const MUTANTS: ReadonlyArray<Mutant> = [
  {
    name: "skip-dedupe",
    breaks: "a retried clientSeq is applied again",
    patches: [{ file: AUTH, anchor: "if (cmd.clientSeq <= rec.last) {", replacement: "if (false) {" }],
  },
  {
    name: "ack-before-durable",
    breaks: "the hub acknowledges and fans out without waiting for the write",
    patches: [{ file: AUTH, anchor: "await this.store.commit(this.docId, {", replacement: "void this.store.commit(this.docId, {" }],
  },
  {
    name: "fan-out-before-commit",
    breaks: "entries go to subscribers before they are durable",
    patches: [{
      file: AUTH,
      anchor: "if (entries.length > 0 || dirty.size > 0) {",
      replacement: "for (const s of this.subscribers.values()) if (s.live && entries.length > 0) for (const m of this.entriesMessages(entries, checkpoint)) s.conn.send(m)\n    if (entries.length > 0 || dirty.size > 0) {",
    }],
  },
  {
    name: "skip-rebase-undo",
    breaks: "entries are applied on top of pending commands",
    patches: [{ file: RS, anchor: "IntegrateResult {\n    this.undoPending()", replacement: "IntegrateResult {" }],
  },
  {
    name: "skip-rebase-redo",
    breaks: "pending commands are not re-applied after a rebase",
    patches: [{ file: RS, anchor: "    this.redoPending()\n    return { confirmed, applied", replacement: "    return { confirmed, applied" }],
  },
  {
    name: "skip-checkpoint-verify",
    breaks: "a replica never compares its hash with the authority's",
    patches: [{ file: RS, anchor: "return actual === expected ? undefined : { seq, expected, actual }", replacement: "return undefined" }],
  },
  {
    name: "accept-clientseq-gaps",
    breaks: "a clientSeq beyond the next one is accepted",
    needsEngineSupport: true,
    simArgs: ["--hostile", "1"],
    patches: [{ file: AUTH, anchor: "cmd.clientSeq > rec.last + 1", replacement: "false" }],
  },
  {
    name: "drop-outbox-write",
    breaks: "commands are sent without being written to the outbox",
    patches: [{ file: DOC, anchor: "(store) => store.appendOutbox(", replacement: "(store) => Promise.resolve(store) && Promise.resolve() || store.appendOutbox(" }],
  },
  {
    name: "forget-client-record",
    breaks: "the hub never persists its idempotency records",
    patches: [
      { file: AUTH, anchor: "if (this.ack(clientId, msg.ackedClientSeq)) dirty.set(clientId, rec)", replacement: "this.ack(clientId, msg.ackedClientSeq)" },
      { file: AUTH, anchor: "        dirty.set(clientId, rec)\n        out.push(outcome)", replacement: "        out.push(outcome)" },
    ],
  },
  {
    name: "catch-up-off-by-one",
    breaks: "each catch-up page starts one entry late",
    patches: [{ file: AUTH, anchor: "this.store.entries(this.docId, from,", replacement: "this.store.entries(this.docId, from + 1," }],
  },
  {
    name: "confirm-foreign-entry",
    breaks: "another client's entry confirms a pending command with the same clientSeq",
    patches: [{ file: RS, anchor: "if (e.clientId === this.clientId) {", replacement: "if (true) {" }],
  },
  {
    name: "reuse-random-seed",
    breaks: "ctx.random() draws the same numbers at every seq",
    patches: [{ file: "core/machine.ts", anchor: "entryRandom(this.docId, this.seq)", replacement: "entryRandom(this.docId, 1)" }],
  },
  {
    name: "skip-undo-on-rejection",
    breaks: "a rejected command's writes stay in the authority's state",
    patches: [{ file: AUTH, anchor: "            this.host.undo(journal)\n            outcome = { clientSeq: cmd.clientSeq, rejection }", replacement: "            outcome = { clientSeq: cmd.clientSeq, rejection }" }],
  },
  {
    name: "swallow-rejection",
    breaks: "a rejected command leaves the outbox and the app is never told",
    patches: [{
      file: DOC,
      anchor: "d?.reject(new CommandRejected({ code: rejection.code, message: rejection.message, command, clientSeq }))\n      this.emit(\"rejected\", { clientSeq, command, rejection })",
      replacement: "void CommandRejected",
    }],
  },
]
