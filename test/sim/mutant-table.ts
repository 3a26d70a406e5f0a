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
 * The world mutants run in: the whole world (hostile clients, app bugs, disk faults, mixed
 * protocols, snapshots, stream faults), with a smaller big document so seeds stay quick.
 */
export const MUTANT_WORLD: ReadonlyArray<string> = ["--big-kib", "256"]

const AUTH = "core/authority/doc-authority.ts"
/** Bursts of arguments larger compact than canonical, protocol 2, and the hub's default catch-up page (the sim's 8 entries of them fit a frame whichever way they are cut). */
const FLAGS_WORLD = ["--flag-bursts", "3", "--catch-up-page", "512", "--protocols", "v2"]
const RS = "core/replica/replica-state.ts"
const DOC = "core/replica/doc.ts"
const TABLE = "core/authority/client-table.ts"
const HUB = "core/authority/hub.ts"
const CLIENT = "core/replica/client.ts"

export const MUTANTS: ReadonlyArray<Mutant> = [
  {
    name: "skip-dedupe",
    breaks: "a retried clientSeq is applied again",
    patches: [
      { file: TABLE, anchor: "if (clientSeq === m.last + 1) {", replacement: "if (clientSeq <= m.last + 1) {" },
      { file: TABLE, anchor: "if (clientSeq !== m.last + 1) throw", replacement: "if (false) throw" },
      { file: TABLE, anchor: "    m.last = clientSeq\n", replacement: "    m.last = Math.max(m.last, clientSeq)\n" },
    ],
  },
  {
    name: "ack-before-durable",
    breaks: "the hub acknowledges and fans out without waiting for the write",
    patches: [{ file: AUTH, anchor: "await this.store.commit(this.docId, {", replacement: "void this.store.commit(this.docId, {" }],
  },
  {
    name: "fan-out-before-commit",
    breaks: "entries go to subscribers before they are durable",
    patches: [
      {
        file: AUTH,
        anchor: "    if (entries.length > 0 || table.changed) {",
        replacement: "    const early = entries.length > 0 ? this.followers.fanOut(seqBefore, entries, checkpoints, this.seq, own) : new Set<Connection<ServerMessage>>()\n    if (entries.length > 0 || table.changed) {",
      },
      { file: AUTH, anchor: "confirmedByEntries = this.followers.fanOut(seqBefore, entries, checkpoints, this.committed, own)", replacement: "confirmedByEntries = early" },
    ],
  },
  {
    name: "skip-rebase-undo",
    breaks: "entries are applied on top of pending commands",
    patches: [{ file: RS, anchor: "      this.#undoPending()\n      for (; i < entries.length; i++) {", replacement: "      for (; i < entries.length; i++) {" }],
  },
  {
    name: "skip-rebase-redo",
    breaks: "pending commands are not re-applied after a rebase",
    patches: [{ file: RS, anchor: "      this.#redoPending()\n    }\n    return { confirmed, applied", replacement: "    }\n    return { confirmed, applied" }],
  },
  {
    name: "skip-checkpoint-verify",
    breaks: "a replica never compares its hash with the authority's",
    patches: [{ file: RS, anchor: "return actual === expected ? undefined : { seq, expected, actual }", replacement: "return undefined" }],
  },
  {
    name: "accept-clientseq-gaps",
    breaks: "a clientSeq beyond the next one is accepted",
    simArgs: ["--hostile", "1"],
    patches: [
      { file: TABLE, anchor: "if (clientSeq > m.last + 1) return { kind: \"gap\", expected: m.last + 1 }", replacement: "if (clientSeq > m.last + 1) return { kind: \"new\" }" },
      { file: TABLE, anchor: "if (clientSeq !== m.last + 1) throw", replacement: "if (false) throw" },
    ],
  },
  {
    name: "drop-outbox-write",
    breaks: "commands are sent without being written to the outbox",
    patches: [{ file: "core/store/replica-store.ts", anchor: "outboxOps(docId, ops, batch.outbox ?? [])", replacement: "outboxOps(docId, ops, [])" }],
  },
  {
    name: "forget-client-record",
    breaks: "the hub never persists its idempotency records",
    patches: [
      { file: TABLE, anchor: "out.marks.push([clientId, { ...s.mark }])", replacement: "void s.mark" },
      { file: TABLE, anchor: "for (const r of s.fresh) out.runs.push(", replacement: "for (const r of s.fresh.slice(0, 0)) out.runs.push(" },
    ],
  },
  {
    name: "catch-up-off-by-one",
    breaks: "each catch-up page starts one entry late",
    patches: [{ file: "core/authority/followers.ts", anchor: "entries = await this.doc.entries(from, ", replacement: "entries = await this.doc.entries(from + 1, " }],
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
    patches: [{ file: AUTH, anchor: "            if (rejected !== undefined) this.host.undo(journal)\n", replacement: "            if (rejected !== undefined) void journal\n" }],
  },
  {
    name: "skip-size-bound",
    breaks: "a document grows past maxDocumentBytes",
    // Seeds bound documents only with a big document of 1 MiB or more (simulation.ts docCap).
    simArgs: ["--big-kib", "2048"],
    patches: [{ file: AUTH, anchor: "    if (bound.fits(written)) return void bound.accept(written, changed)\n", replacement: "    return void bound.accept(written, changed)\n" }],
  },
  {
    name: "swallow-rejection",
    breaks: "a rejected command leaves the outbox and the app is never told",
    patches: [{
      file: DOC,
      anchor: "d?.reject(new CommandRejected({ code: rejection.code, message: rejection.message, command, clientSeq }))\n      this.#emit(covered.has(p!) ? \"resent\" : \"rejected\", { clientSeq, command, rejection })",
      replacement: "void CommandRejected",
    }],
  },
  {
    name: "v2-elide-wrong-clientseq",
    breaks: "protocol 2 names the receiver's own elided entry with the next clientSeq",
    patches: [{ file: "core/protocol/codec-server.ts", anchor: "        w.byte(0)\n        w.varint(cs)\n", replacement: "        w.byte(0)\n        w.varint(cs + 1)\n" }],
  },
  {
    name: "compact-one-too-many",
    breaks: "compaction deletes the first entry of the kept tail too",
    patches: [{ file: "core/store/snapshot-store.ts", anchor: "this.deletePaged(from, K.authEntry(docId, horizon + 1),", replacement: "this.deletePaged(from, K.authEntry(docId, horizon + 2)," }],
  },
  {
    name: "install-without-hash-check",
    breaks: "a replica installs a streamed snapshot whose bytes do not hash to the announced hash",
    patches: [{ file: "core/replica/snapshot-receiver.ts", anchor: "if (actual !== this.begin.hash) return", replacement: "if (false) return" }],
  },
  {
    name: "compact-without-snapshot",
    breaks: "the horizon passes the newest snapshot (entries go that no snapshot holds)",
    patches: [{ file: AUTH, anchor: "const upTo = await this.store.horizonFor(this.docId, meta.seq, tail)", replacement: "const upTo = this.committed" }],
  },
  {
    name: "skip-downcast",
    breaks: "an older app is sent newer entries as they are, not converted down to its version",
    patches: [{ file: "core/schema/serve.ts", anchor: "    conv = h.convert(cmds, from, to)", replacement: "    conv = from > to ? cmds : h.convert(cmds, from, to)" }],
  },
  {
    name: "crdt-coalesce-drops",
    breaks: "keystrokes typed while a merge is in flight are coalesced into the first one only (the rest never leave the replica)",
    patches: [{ file: "adapters/yjs/engine.ts", anchor: "return updates.length === 1 ? updates[0] : Y.mergeUpdates(updates as Uint8Array[])", replacement: "return updates[0]" }],
  },
  {
    name: "crdt-hub-drops-merge",
    breaks: "the hub confirms a CRDT merge it checked but never merges it into its field",
    patches: [{ file: "core/crdt/fields.ts", anchor: "      update = pre.update\n", replacement: "      return undefined\n" }],
  },
  {
    name: "crdt-refuse-honest-delete",
    breaks: "the hub refuses an honest Yjs delete of a client's newest clock as missing dependencies (the keystrokes merged with it are lost)",
    patches: [{ file: "adapters/yjs/integrable.ts", anchor: "if (r.clock >= e || r.clock + r.len > e) {", replacement: "if (r.clock >= e || r.clock + r.len >= e) {" }],
  },
  {
    name: "crdt-coalesce-unbounded",
    breaks: "changes coalesced behind a merge in flight go as one command whatever their size (over the command limit: refused before sending, lost)",
    patches: [
      { file: "core/crdt/outbox.ts", anchor: "list.length < MAX_COALESCED && sizeOf(list) < budget && this.port.online()", replacement: "list.length < MAX_COALESCED && this.port.online()" },
      { file: "core/crdt/outbox.ts", anchor: "const updates = consecutiveRuns(list, sizeOf, budget, MAX_COALESCED).map(", replacement: "const updates = [list].map(" },
    ],
  },
  {
    name: "crdt-coalesce-ignores-limit",
    breaks: "coalescing keeps its 64 KiB budget under an app's smaller command limit (pastes that fit one by one go merged, refused before sending, lost)",
    patches: [{ file: "core/crdt/outbox.ts", anchor: "const budget = fieldBudget(f, this.port.maxCommandBytes)", replacement: "const budget = fieldBudget(f, 256 << 10)" }],
  },
  {
    name: "crdt-am-coalesce-drops",
    breaks: "Automerge changes made while a merge is in flight are coalesced into the first one only",
    patches: [{ file: "adapters/automerge/engine.ts", anchor: "return (updates as ReadonlyArray<Uint8Array[]>).flat()", replacement: "return updates[0]" }],
  },
  {
    name: "migrate-twice",
    breaks: "a hub upgrade runs the state migration twice (v3 priorities x100)",
    patches: [{ file: AUTH, anchor: "      applyMigration(host, docId, history, marker)\n", replacement: "      applyMigration(host, docId, history, marker)\n      applyMigration(host, docId, history, marker)\n" }],
  },
  {
    name: "apply-migration-drops-fields",
    breaks: "a `$migrate` (the hub's upgrade, or its replay at a load) leaves the CRDT fields off the migrated state: the hub's text loses what was merged before the upgrade (acknowledged inserts missing)",
    patches: [{ file: "core/schema/serve.ts", anchor: "registerRoot(host.root as object, fields)", replacement: "return" }],
  },
  {
    name: "replica-upgrade-drops-fields",
    breaks: "a stored replica opened by a newer app migrates its plain state only: its confirmed text (and what its unsent edits build on) is gone until the hub's state comes",
    patches: [{ file: "core/schema/replica-upgrade.ts", anchor: "fields === undefined ? host.root : fields.snapshotOf(host.root)", replacement: "host.root" }],
  },
  {
    name: "fields-not-widened",
    breaks: "a document loaded at v1 keeps v1's CRDT fields after its `$migrate`: the first edit of the field v2 adds breaks the hub's text document (no such field)",
    patches: [{ file: "core/crdt/fields.ts", anchor: "f.widen(decls)", replacement: "void 0" }],
  },
  {
    name: "migrate-checkpoint-without-added-fields",
    breaks: "the checkpoint of a `$migrate` entry is hashed before the fields the new version adds join (they join at the next command): v2 replicas that verify it desync",
    patches: [{ file: "core/schema/serve.ts", anchor: "      m.crdtRuntime?.fieldsOf(m.crdt!, host)\n      return\n", replacement: "      return\n" }],
  },
  {
    name: "held-load-throws",
    breaks: "an app's migrateState throwing on a stored state stops the document loading on an upgraded hub, for every version (c29c7f9's hub half undone)",
    patches: [{ file: AUTH, anchor: "        held = holdAt(docId, machine, epoch, e)\n", replacement: "        throw e\n" }],
  },
  {
    name: "held-serves-newer",
    breaks: "a document held at an older version (its upgrade's migration threw) is served to apps of the newer version as if it were at theirs",
    patches: [
      { file: HUB, anchor: "const held = doc.refusal(msg.version)", replacement: "const held = doc.refusal(0)" },
      { file: AUTH, anchor: "const refused = heldRefusal(this.held, version)", replacement: "const refused = heldRefusal(this.held, 0)" },
    ],
  },
  {
    name: "replica-upgrade-throws",
    breaks: "an updated app whose migrateState throws on its stored replica cannot open the document (c29c7f9's replica half undone)",
    patches: [{ file: "core/schema/replica-upgrade.ts", anchor: "    state = machine.initial()\n", replacement: "    throw e\n" }],
  },
  {
    name: "closed-doc-keeps-timer",
    breaks: "a closed document keeps its idle timer armed (a closed hub's process stays alive until it fires)",
    patches: [{ file: AUTH, anchor: "    this.quietTimer?.cancel()\n    this.idleTimer?.cancel()\n", replacement: "    this.quietTimer?.cancel()\n" }],
  },
  {
    name: "closed-doc-arms-checkpoint",
    breaks: "a commit landing after a document closed arms its quiet checkpoint (a timer, then a write, after the hub's close() resolved)",
    patches: [{ file: AUTH, anchor: "    if (this.closed || !Number.isFinite(this.quietMs)) return\n", replacement: "    if (!Number.isFinite(this.quietMs)) return\n" }],
  },
  {
    name: "rate-hold-stuck",
    breaks: "a connection held for the command rate is never read again (the replica's outbox never drains)",
    patches: [{ file: "core/authority/hub.ts", anchor: "      session.rateHold = undefined\n      this.endHoldWaits(session)\n      this.release(session)\n", replacement: "      session.rateHold = undefined\n      this.endHoldWaits(session)\n" }],
  },
  {
    name: "inflow-stuck",
    breaks: "a connection paused by input flow control is never read again",
    patches: [{ file: "core/inflow.ts", anchor: "        this.#paused = false\n        this.resume()\n", replacement: "        this.#paused = false\n" }],
  },
  {
    name: "no-storage-claim",
    breaks: "a second client opens on a store in use (two tabs share a clientId; the hub drops one's commands as the other's retries)",
    patches: [{ file: "core/store/replica-store.ts", anchor: "const release = (await storage.claim?.()) ?? (() => {})", replacement: "const release = () => {}" }],
  },
  {
    name: "session-leak",
    breaks: "a connection the hub closes itself (a broken document, a slow consumer, a failed send) stays in the hub, following its documents",
    patches: [{ file: "core/authority/guarded-connection.ts", anchor: "        onClosed(code)\n", replacement: "" }],
    // Documents broken by a failed write close their followers: more of them, more leaks left in the last hub.
    simArgs: ["--hub-write-failures", "0.05"],
  },
  {
    name: "send-window-stuck",
    breaks: "answers do not refill a document's send window (commands past the first window are never sent)",
    patches: [{ file: DOC, anchor: "    // Answers free the send window.\n    this.#pump()\n", replacement: "" }],
  },
  {
    name: "downcast-throw-escapes",
    breaks: "an app's downcast that throws escapes into the hub (fan-out, catch-up) instead of being a barrier for older readers",
    patches: [{ file: "core/schema/versions.ts", anchor: "          } catch {\n            // A downcast that throws", replacement: "          } catch (e) {\n            throw e\n            // A downcast that throws" }],
  },
  {
    name: "crdt-work-free",
    breaks: "CRDT field updates cost their sender nothing: a few hundred bytes of Automerge change standing for thousands of ops are merged as fast as they come",
    patches: [{ file: "core/authority/hub.ts", anchor: "known ?? this.crdtWork.weigh(msg) : undefined", replacement: "undefined : undefined" }],
    simArgs: ["--crdt-heavy", "20", "--attacks", "legit"],
  },
  {
    name: "yjs-values-unbounded",
    breaks: "Yjs values nest without bound: one update of 5,000-level JSON content is taken into a text field, which then cannot be encoded (the field breaks, acknowledged text is lost)",
    patches: [
      { file: "adapters/yjs/integrable.ts", anchor: "if (++depth > MAX_VALUE_DEPTH) return true", replacement: "if (++depth > Infinity) return true" },
      { file: "adapters/yjs/integrable.ts", anchor: "if (open.length >= MAX_VALUE_DEPTH) return \"deep\"", replacement: "if (open.length >= Infinity) return \"deep\"" },
    ],
    simArgs: ["--crdt-poison", "5", "--attacks", "legit"],
  },
  {
    name: "automerge-counters-unbounded",
    breaks: "an Automerge change may start at any op counter above its history: one starting far above every counter is taken, and A.load of the document then allocates per counter up to it (at 2^27 the document's save no longer loads)",
    patches: [{ file: "adapters/automerge/validate.ts", anchor: "if (c.startOp > top + 1) return ops(", replacement: "if (c.startOp > Infinity) return ops(" }],
    simArgs: ["--crdt-poison", "5", "--attacks", "legit"],
  },
  {
    name: "memory-growth-uncharged",
    breaks: "a command's growth is not charged to the hub's memory gauge: a client growing a document of empty objects holds the hub's memory past maxHeldBytes (at the default, a crash)",
    patches: [{ file: AUTH, anchor: "merged === 0 && grown > 0 && this.hooks.memory !== undefined", replacement: "merged === 0 && grown > Infinity && this.hooks.memory !== undefined" }],
    simArgs: ["--memory-hog", "1", "--attacks", "legit", "--big-kib", "0"],
  },
  {
    name: "batch-unsliced",
    breaks: "the hub judges a batch of commands in one stretch whatever they cost: a submit of slow app commands holds its event loop (1,000 reads of 20,000 keys: 29.6 s, past every heartbeat)",
    patches: [{ file: AUTH, anchor: "if (over && !this.granted) {", replacement: "if (over && !this.granted && false) {" }],
    simArgs: ["--cpu-hog", "1", "--attacks", "legit", "--big-kib", "0"],
  },
  {
    name: "command-work-uncharged",
    breaks: "a command's time is not charged to its client: one client's slow commands take as much of the hub as the command rate lets it send",
    patches: [{ file: HUB, anchor: "if (this.limits.workPerSecond > 0) this.chargeWork(clientId, micros)", replacement: "if (this.limits.workPerSecond > Infinity) this.chargeWork(clientId, micros)" }],
    simArgs: ["--cpu-hog", "1", "--attacks", "legit", "--big-kib", "0"],
  },
  {
    name: "address-work-unshared",
    breaks: "clients are not paid from their address's work budget: fresh client ids, each with its own burst, take the hub's time together (100 from one address took 182 s of it at once)",
    patches: [{ file: HUB, anchor: "if (this.limits.sharedWorkPerSecond > 0) {", replacement: "if (this.limits.sharedWorkPerSecond > Infinity) {" }],
    simArgs: ["--cpu-hog", "1", "--attacks", "legit", "--big-kib", "0"],
  },
  {
    name: "cut-submits-canonical",
    breaks: "a replica cuts its submits by the commands' canonical size, though compact arguments can be larger: a submit over the frame limit, refused at every reconnect",
    patches: [{ file: DOC, anchor: "submitParts(commands, (p) => (compact ? weigh(p.name, this.#compactArgs(p).length) : sizeOf(p)))", replacement: "submitParts(commands, (p) => sizeOf(p))" }],
    simArgs: FLAGS_WORLD,
  },
  {
    name: "cut-entries-canonical",
    breaks: "the hub cuts entries into messages by their canonical size and compacts them after: a catch-up page over the frame limit",
    patches: [{
      file: AUTH,
      anchor: "return cutBySize(list, this.maxMessageBytes, new Set(bySeq.keys())).map((run) => {",
      replacement: "return cutBySize(entries, this.maxMessageBytes, new Set(bySeq.keys())).map((cut) => {\n      const run = compact ? cut.map((e) => (elide?.has(e.seq) ? e : this.compactEntry(e))) : cut",
    }],
    simArgs: FLAGS_WORLD,
  },
  {
    name: "queue-unbounded",
    breaks: "the hub reads on past what it has not handled: a subscribe flood queues in its memory",
    patches: [{ file: HUB, anchor: "const handled = session.waiting.take(1)", replacement: "const handled = () => {}" }],
  },
  {
    name: "replies-ungated",
    breaks: "what the hub answers a connection itself (errors, refusals) skips the output gate: a peer that never reads and keeps asking fills the hub's memory with unsent answers",
    patches: [{ file: "core/authority/guarded-connection.ts", anchor: "      if (overHardLimit(conn, hardLimit)) return closeSlowConsumer(gated, hardLimit)\n", replacement: "" }],
    simArgs: ["--deaf-askers", "3", "--attacks", "legit"],
  },
  {
    name: "presence-leave-kept",
    breaks: "a replica keeps showing a client the hub says left (its map is not told of leaves): the simulator's end-of-seed presence check (every replica shows each other one's last presence, and no one else)",
    patches: [{ file: "core/replica/doc.ts", anchor: "        const had = this.#others.delete(clientId)\n", replacement: "        const had = this.#others.has(clientId)\n" }],
  },
  {
    name: "presence-newcomer-not-caught-up",
    breaks: "a newcomer is never sent who is here (only later changes): replicas that joined after a client set its presence never show it",
    patches: [{ file: "core/authority/followers.ts", anchor: "        if (latestPresence(conns, f) !== undefined) f.presenceDue.add(clientId)\n", replacement: "" }],
  },
  {
    name: "presence-leave-at-once",
    breaks: "a follower leaving with a presence is relayed to every follower at once, not on the tick: a client leaving and coming back in a loop makes the hub send everyone its presence as fast as it loops",
    patches: [{ file: "core/authority/followers.ts", anchor: "    if (f.presence !== null) this.presenceChangedBy(f)\n", replacement: "    if (f.presence !== null) this.broadcastPresence(f.clientId, f, this.connectionsByClient(), this.doc.runtime.now())\n" }],
    simArgs: ["--presence-churn", "3", "--attacks", "legit"],
  },
  {
    name: "presence-first-come",
    breaks: "presence changes are relayed first come first served, not in fair order: a crowd of clients renewing large presences holds an honest cursor back by a round of all of them (review r16, finding 1)",
    patches: [{ file: "core/authority/followers.ts", anchor: "    order.sort((a, b) => a.finish - b.finish)\n", replacement: "" }],
    simArgs: ["--presence-churn", "3", "--attacks", "legit"],
  },
  {
    name: "loads-free",
    breaks: "a subscribe that loads a document costs its client nothing more than the message",
    patches: [{ file: HUB, anchor: "    if (rate > 0) {", replacement: "    if (false) {" }],
  },
  {
    name: "claim-reload-free",
    breaks: "the reload after a claim of an unwritten document is not paid for: a client subscribing to one document as two machines in turn makes the hub load it for every message",
    patches: [{ file: HUB, anchor: "          doc = await load()", replacement: "          doc = await this.doc(msg.docId, machine)" }],
  },
  {
    name: "refused-unbounded",
    breaks: "a connection may have any number of subscribes refused, each of which took a channel its codec session keeps for its life",
    patches: [{ file: HUB, anchor: "if (++session.refusedSubscribes <= this.limits.maxRefusedSubscribes) return", replacement: "if (++session.refusedSubscribes > 0) return" }],
  },
  {
    name: "drained-never-resumed",
    breaks: "a follower paused at the high-water mark is never resumed once its connection drains: a replica that stopped reading for a while stays behind for the rest of the connection",
    patches: [{ file: "core/authority/followers.ts", anchor: "      if (f.stream !== undefined) f.stream.resume()\n      else this.catchUp(f)\n", replacement: "" }],
    simArgs: ["--big-kib", "2048", "--stalls", "12"],
  },
  {
    name: "acked-forgotten",
    breaks: "the hub forgets an outcome once its client acknowledges it: a store restored from a backup resends its outbox, which is renumbered and applied again",
    patches: [{ file: TABLE, anchor: "const upTo = Math.min(s.mark.acked, s.mark.last - ACKED_KEPT)", replacement: "const upTo = s.mark.acked" }],
  },
  {
    name: "own-entry-by-number",
    breaks: "a replica takes any entry of its clientId under a pending command's number for that command: a store restored from a backup has a new command confirmed by an old one's entry",
    patches: [{ file: RS, anchor: "if (p !== undefined && (this.sameForm !== undefined ? e.foreign !== true : sameCommand(e, p))) {", replacement: "if (p !== undefined) {" }],
  },
  {
    name: "answered-renumbered",
    breaks: "a renumbering moves a command the hub answered at a seq the replica has not caught up to: a store restored from a backup applies it twice",
    patches: [{ file: DOC, anchor: "this.#rs.renumber(from, down, this.#settleAt)", replacement: "this.#rs.renumber(from, down, new Map())" }],
    // Protocol 2: from protocol 3 on the moved command also says the number it was made under,
    // and the hub finds it by that (made-as-ignored), so this fix is the one that holds for older apps.
    simArgs: ["--rollbacks", "8", "--protocols", "v2"],
  },
  {
    name: "reset-unfenced",
    breaks: "after a sequence-reset the hub takes a submit already on its way, numbered before the renumbering: its command applies under its old number and again under its new one",
    patches: [{ file: AUTH, anchor: "if (where.kind === \"conflict\") this.fenced.add(conn)", replacement: "" }],
    // Protocol 2, as answered-renumbered: protocol 3's made-under number covers this one too.
    simArgs: ["--rollbacks", "8", "--protocols", "v2"],
  },
  {
    name: "made-as-ignored",
    breaks: "the hub does not look a renumbered command up by the number it was made under: a store restored from a backup taken before the renumbering sends it under that number, and it applies again",
    patches: [{ file: TABLE, anchor: "if (hash === 0) return undefined", replacement: "return undefined" }],
    simArgs: ["--rollbacks", "8"],
  },
  {
    name: "compat-entry-by-number",
    breaks: "compat mode takes any entry of its clientId under a pending command's number for that command: on a store restored from a backup a new command is confirmed by an old one's entry and never applied",
    patches: [{ file: RS, anchor: "(this.sameForm !== undefined ? e.foreign !== true : sameCommand(e, p))", replacement: "(this.sameForm !== undefined || sameCommand(e, p))" }],
    simArgs: ["--rollbacks", "8"],
  },
  {
    name: "made-as-unsent",
    breaks: "a command the hub renumbers forgets the number it was made under: the hub cannot find it when a backup sends it under that number, and it applies again",
    patches: [{ file: RS, anchor: "if (!down) m.command.madeAs ??= m.from", replacement: "" }],
    // Protocol 3 everywhere: a double application of a command taken without its made-under
    // number is otherwise excused while a hub start that speaks protocol 1 only runs.
    simArgs: ["--rollbacks", "8", "--protocols", "v3"],
  },
  {
    name: "catch-up-retry-throws",
    breaks: "the first catch-up retry after a disk fault throws (a hub bug on a recovery path): the replica is told catch-up-failed, which the simulator must not take for the injected fault",
    patches: [{
      file: "core/authority/followers.ts",
      anchor: "const older = f.version < this.doc.version()",
      replacement: "if (f.failures === 1) { f.failures = 2; throw new TypeError(\"Cannot read properties of undefined (reading 'cursor')\") }\n    const older = f.version < this.doc.version()",
    }],
    simArgs: ["--hub-read-failures", "0.05", "--replica-read-failures", "0.05"],
  },
  {
    name: "late-open-refused",
    breaks: "a document opened after the handshake, its machine newer than the hub's, is left refused schema-too-new (receipts rejected) until the connection drops, instead of the client stepping down for it",
    patches: [{ file: CLIENT, anchor: "if (msg.code === \"schema-too-new\" && this.#stepDown(m)) {", replacement: "if (false) {" }],
  },
]
