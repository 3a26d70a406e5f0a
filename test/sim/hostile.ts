/**
 * The hostile clients: raw protocol speakers that do what no CanonClient would.
 *
 * The raw client connects under its own fresh clientId (`raw-N`), follows the TodoPlus
 * documents and sends, one attack at a time: invalid arguments, unknown commands, prototype
 * keys as ids and as field names, aliasing and non-plain writes, arguments just under and
 * just over the frame limit and over the command bound, deeply nested arguments, clientSeq
 * gaps (last+2, 2^52), and duplicates of a used clientSeq carrying a different command (alone
 * and inside one submit). It also sends ordinary commands of its own, which may be accepted.
 *
 * The forger connects with a replica's clientId (with no secret, or a guessed one), claims
 * the replica's outcomes are all acknowledged, and submits at the replica's next clientSeq
 * and at an old one.
 *
 * Every command sent is recorded with what the engine must do with it (checker.ts judges).
 */
import { createHash } from "node:crypto"
import * as encoding from "lib0/encoding"
import * as A from "@automerge/automerge"
import {
  DEFAULT_MAX_FRAME_BYTES, encodeCanonical, type ClientMessage, type Connection, type Machine, type Runtime, type ServerMessage,
} from "../../core/index.js"
import { encodeClientMessage } from "../../core/internal.js"
import type { MemoryNetwork } from "../../adapters/memory/index.js"
import type { AutomergeTextHandle } from "../../adapters/automerge/index.js"
import type { CrdtField } from "../../core/crdt/engine.js"
import { STAMP_KINDS, TodoPlus } from "./machines.js"
import { pick, plainCommand, todoCommand, TODO_IDS, type Rng } from "./workload.js"
import { MAX_BURN_MS } from "./cpu.js"

/**
 * A Yjs V1 update of one struct (client `client`, clock 0) in a text field's root "t" holding a
 * value `depth` levels deep: JSON content, a ContentAny or a format's value (JSON text in V1).
 */
const deepYjsUpdate = (kind: "json" | "any" | "format", client: number, depth: number): Uint8Array => {
  const e = encoding.createEncoder()
  for (const n of [1, 1, client, 0]) encoding.writeVarUint(e, n) // clients, structs, client, clock
  encoding.writeUint8(e, kind === "json" ? 2 : kind === "any" ? 8 : 6) // no origins, no parentSub
  encoding.writeVarUint(e, 1) // the parent is a root type, by name
  encoding.writeVarString(e, "t")
  if (kind === "any") {
    encoding.writeVarUint(e, 1) // one value
    for (let i = 0; i < depth; i++) (encoding.writeUint8(e, 117), encoding.writeVarUint(e, 1)) // an array of one
    encoding.writeUint8(e, 127) // undefined
  } else {
    if (kind === "json") encoding.writeVarUint(e, 1) // one value
    else encoding.writeVarString(e, "bold")
    encoding.writeVarString(e, "[".repeat(depth) + "]".repeat(depth))
  }
  encoding.writeVarUint(e, 0) // empty delete set
  return encoding.toUint8Array(e)
}

/** What the engine must do with a hostile command. */
export type Expectation =
  /** An ordinary command of the raw client's own: any outcome. */
  | "legit"
  /** Must not be accepted; a refusal carries one of `codes` (when given). */
  | "refuse"
  /** Refused with one of `codes`, or accepted and harmless (the world's invariants judge). */
  | "refuse-or-harmless"
  /** A reused clientSeq: the original outcome (or outcome-expired), never a second entry. */
  | "original"

export interface RawConn {
  readonly id: number
  readonly clientId: string
  /** Claims another client's id. */
  readonly forged: boolean
  readonly victim: string | undefined
  conn: Connection<ClientMessage> | undefined
  open: boolean
  /** Close code, whether the network (not the hub) ended it, and when (virtual ms). */
  closed: { readonly code: string; readonly byNetwork: boolean; readonly byUs?: boolean; readonly at: number } | undefined
  refused: string | undefined
  welcomed: boolean
  /** Error codes the hub sent on this connection. */
  readonly errors: string[]
  /**
   * Documents the hub answered a `sequence-reset` on this connection, and when (virtual ms):
   * the hub takes nothing more of them here until the connection subscribes again (DESIGN.md,
   * "after a sequence-reset"), which the raw client never does; what it sends after is
   * answered by that error, not by an outcome.
   */
  readonly resets: Map<string, number>
  /** Highest clientSeq this connection believes the hub consumed, per document. */
  readonly last: Map<string, number>
  /** Attacks waiting for the connection to open. */
  readonly queue: Array<() => void>
  spoiled: boolean
}

export interface RawCommand {
  readonly conn: RawConn
  readonly docId: string
  readonly clientSeq: number
  readonly name: string
  /** Hash and length of the canonical bytes of the args (undefined: not encodable). */
  readonly argsKey: string | undefined
  readonly attack: string
  readonly expect: Expectation
  /** Allowed rejection codes (undefined: any code but acceptance, or an error, or a close). */
  readonly codes: ReadonlyArray<string> | undefined
  readonly original: RawCommand | undefined
  readonly sentAt: number
  /** "seq:N" or the rejection code. */
  outcome: string | undefined
  /** The codec refused to produce the frame (it never left the client). */
  localRefusal: string | undefined
  /** Errors received on the connection before this command was sent. */
  readonly errorsBefore: number
  /** A CRDT update's estimated hub work (its field engine's `weigh`), in µs. */
  readonly weight?: number
  /** When its outcome arrived (virtual ms). */
  answeredAt?: number
}

/** A one-op Automerge change to `target`'s `am` field (on its initial content) by `actor`, starting at op `startOp`. */
const farCounterChange = (target: HostileTarget, startOp: number, actor: string): Uint8Array => {
  const field = target.machine.crdt![HEAVY_FIELD]!.engine.create() as CrdtField<AutomergeTextHandle>
  const deps = A.getHeads(field.handle.doc)
  field.destroy()
  const op = { action: "set", obj: "_root", key: "k", value: 1, datatype: "int", pred: [] }
  return A.encodeChange({ actor, seq: 1, startOp, time: 0, message: null, deps, ops: [op] } as unknown as A.DecodedChange)
}

/** Empty objects each of the memory hog's commands adds: 40 KB of arguments (under the lowered command bound), 2.2 MB of the hub's memory as it counts them. */
const HOG_OBJECTS = 20_000
/** Commands in each of the CPU hog's submits: 0.2 s of the hub's time. */
const CPU_HOG_BURNS = 10
/** Client ids the CPU hog sends as at once, behind one address: together past its address's budget (simulation.ts SIM_HOG_WORK). */
export const CPU_HOG_IDS = 3

/** The heavy writer's field (SimText's Automerge text) and the characters each of its changes inserts and deletes. */
const HEAVY_FIELD = "am"
const HEAVY_CHARS = 1_000

/** Identifies canonical bytes (node's native hash: the engine's is slow inside jest's vm context). */
/** The hostile clients' attacks: the raw client's, and "forged-id" (the forger). */
export const ATTACKS = [
  "legit", "invalid-args", "unknown-command", "proto-id", "proto-fields", "alias", "stamp", "oversize-under-frame", "oversize-over-frame",
  "oversize-mid", "oversize-small", "deep", "gap", "huge-seq", "duplicate", "duplicate-in-batch", "forged-id",
] as const
export type Attack = (typeof ATTACKS)[number]
/** Attacks with large or deep arguments: costly for an engine that accepts them. */
export const SIZE_ATTACKS: ReadonlyArray<Attack> = ["oversize-under-frame", "oversize-over-frame", "oversize-mid", "oversize-small", "deep"]
/** Attacks on the state model: prototype keys, aliasing, non-plain values. */
export const STATE_ATTACKS: ReadonlyArray<Attack> = ["proto-id", "proto-fields", "alias", "stamp"]
/** Attacks on the protocol: bad commands, clientSeq gaps and duplicates. */
export const PROTOCOL_ATTACKS: ReadonlyArray<Attack> = ATTACKS.filter((a) => !SIZE_ATTACKS.includes(a) && !STATE_ATTACKS.includes(a))

export const argsKey = (args: unknown): string | undefined => {
  try {
    const bytes = encodeCanonical(args)
    return `${createHash("sha1").update(bytes).digest("hex").slice(0, 16)}/${bytes.length}`
  } catch {
    return undefined
  }
}

/** Keys that name something on Object.prototype: as ids and as field names. */
export const PROTO_KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype"]

/** Refusal codes an engine may give a hostile command (any but outcome-expired, a false rejection). */
const ANY_REFUSAL = ["rejected", "command-failed", "invalid-args", "unknown-command", "unauthorized", "state-unencodable", "command-too-large"]

const withOwnKey = (key: string, value: unknown): Record<string, unknown> => {
  const o: Record<string, unknown> = {}
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
  return o
}

const nest = (levels: number): unknown => {
  let v: unknown = 1
  for (let i = 0; i < levels; i++) v = [v]
  return v
}

export interface HostileTarget {
  readonly docId: string
  readonly machine: Machine<any, any>
}

export interface Victim {
  readonly name: string
  readonly clientId: string
  readonly docs: ReadonlyArray<HostileTarget>
  /** The next clientSeq the replica will use on `docId`, as far as anyone can tell. */
  nextClientSeq(docId: string): number
}

export class HostileClients {
  readonly conns: RawConn[] = []
  readonly commands: RawCommand[] = []
  private raw: RawConn | undefined
  private nextConn = 0
  attacks = 0

  constructor(
    private readonly net: MemoryNetwork,
    private readonly rt: Runtime,
    private readonly rng: Rng,
    private readonly docs: ReadonlyArray<HostileTarget>,
    private readonly log: (s: string) => void,
    /** The raw client's repertoire (default: every attack). */
    private readonly repertoire: ReadonlyArray<Attack> = ATTACKS,
  ) {}

  private get rawAttacks(): ReadonlyArray<Exclude<Attack, "forged-id">> {
    return this.repertoire.filter((a): a is Exclude<Attack, "forged-id"> => a !== "forged-id")
  }

  /** Whether the raw client attacks at all. */
  get raws(): boolean {
    return this.rawAttacks.length > 0
  }

  /** Whether the forger is part of the repertoire. */
  get forges(): boolean {
    return this.repertoire.includes("forged-id")
  }

  private connect(clientId: string, victim: string | undefined, docs: ReadonlyArray<HostileTarget>, acked: (docId: string) => number, extra: Record<string, unknown>): RawConn {
    const rc: RawConn = {
      id: this.nextConn++, clientId, forged: victim !== undefined, victim, conn: undefined, open: false, closed: undefined, refused: undefined,
      welcomed: false, errors: [], resets: new Map(), last: new Map(), queue: [], spoiled: false,
    }
    this.conns.push(rc)
    const conn = this.net.transport(victim !== undefined ? "forger" : "raw").connect({
      onOpen: () => {
        rc.open = true
        const hello = { type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], ...extra } as ClientMessage
        conn.send(hello)
        for (const d of docs) {
          conn.send({ type: "subscribe", docId: d.docId, machine: d.machine.name, version: d.machine.version, fingerprint: d.machine.fingerprint, fromSeq: 0, ackedClientSeq: acked(d.docId) })
        }
        for (const f of rc.queue.splice(0)) f()
      },
      onMessage: (m: ServerMessage) => this.receive(rc, m),
      onClose: (info) => {
        rc.open = false
        rc.closed ??= { code: info.code, byNetwork: info.code === "reset" || info.code === "unreachable", at: this.rt.now() }
        if (this.raw === rc) this.raw = undefined
      },
    })
    rc.conn = conn
    return rc
  }

  /** We close (a closing side hears no close event of its own). */
  private close(rc: RawConn | undefined, why: string): void {
    if (rc === undefined || rc.closed !== undefined) return
    rc.open = false
    rc.closed = { code: "closed", byNetwork: false, byUs: true, at: this.rt.now() }
    rc.conn?.close("closed", why)
  }

  private receive(rc: RawConn, m: ServerMessage): void {
    if (m.type === "welcome") rc.welcomed = true
    else if (m.type === "refused") rc.refused = m.code
    else if (m.type === "error") {
      rc.errors.push(m.code)
      if (m.code === "sequence-reset" && "docId" in m && m.docId !== undefined && !rc.resets.has(m.docId)) rc.resets.set(m.docId, this.rt.now())
      // A refused gap is answered by an error, not an outcome: its clientSeq is free again, and
      // a later command under that number must not be matched to it.
      if ((m.code === "sequence-gap" || m.code === "sequence-reset") && "docId" in m && m.seq !== undefined) {
        for (const c of this.commands) {
          if (c.conn === rc && c.docId === m.docId && c.outcome === undefined && c.clientSeq > m.seq && (c.attack === "gap" || c.attack === "huge-seq")) c.outcome = m.code
        }
      }
    }
    else if (m.type === "results") {
      for (const o of m.outcomes) {
        // Outcomes come back in the order the commands were sent on this connection.
        const r = this.commands.find((c) => c.conn === rc && c.docId === m.docId && c.clientSeq === o.clientSeq && c.outcome === undefined && c.localRefusal === undefined)
        if (r === undefined) continue
        r.outcome = "seq" in o ? `seq:${o.seq}` : "rejection" in o ? o.rejection.code : `seqAtMost:${o.seqAtMost}`
        r.answeredAt = this.rt.now()
        // The hub took a clientSeq gap: it now counts this client far ahead; start afresh.
        if ("seq" in o && (r.attack === "gap" || r.attack === "huge-seq")) rc.spoiled = true
      }
    }
  }

  /** Sends one submit; records each command; the codec may refuse the frame outright. */
  private submit(rc: RawConn, docId: string, cmds: ReadonlyArray<{ clientSeq: number; name: string; args: unknown; attack: string; expect: Expectation; codes?: ReadonlyArray<string>; original?: RawCommand; weight?: number }>, acked = 0): RawCommand[] {
    const recs = cmds.map((c): RawCommand => ({
      conn: rc, docId, clientSeq: c.clientSeq, name: c.name, argsKey: argsKey(c.args), attack: c.attack, expect: c.expect, codes: c.codes,
      original: c.original, sentAt: this.rt.now(), outcome: undefined, localRefusal: undefined, errorsBefore: rc.errors.length,
      ...(c.weight !== undefined ? { weight: c.weight } : {}),
    }))
    this.commands.push(...recs)
    this.attacks++
    this.log(`${rc.forged ? "forger" : "raw"} ${rc.clientId} ${cmds.map((c) => `${c.attack}#${c.clientSeq}`).join(",")} on ${docId}`)
    try {
      rc.conn!.send({ type: "submit", docId, commands: cmds.map((c) => ({ clientSeq: c.clientSeq, name: c.name, args: c.args })), ackedClientSeq: acked })
    } catch (e) {
      const code = (e as { code?: string }).code ?? "error"
      for (const r of recs) r.localRefusal = code
    }
    return recs
  }

  private rawConn(): RawConn {
    if (this.raw === undefined || this.raw.closed !== undefined || this.raw.spoiled) {
      const old = this.raw
      // Its own id, proved by its own secret (a hello without one is refused outright).
      const clientId = `raw-${this.nextConn}`
      this.raw = this.connect(clientId, undefined, this.docs, () => 0, { secret: `secret-of-${clientId}-0123456789` })
      this.close(old, "The raw client moves on.")
    }
    return this.raw
  }

  /** One attack of the raw client (queued until its connection is open). */
  attack(): void {
    const fresh = this.raw === undefined || this.raw.closed !== undefined || this.raw.spoiled
    const rc = this.rawConn()
    if (fresh) {
      // Its own item first, so attacks on it are judged by the engine's bounds, not by "No item".
      rc.queue.push(() => {
        for (const d of this.docs) {
          const next = (rc.last.get(d.docId) ?? 0) + 1
          const recs = this.submit(rc, d.docId, [{ clientSeq: next, name: "add", args: { id: rc.clientId, title: "mine" }, attack: "own-item", expect: "legit" }])
          if (recs[0]!.localRefusal === undefined) rc.last.set(d.docId, next)
        }
      })
    }
    const go = () => this.attackOn(rc)
    if (rc.open) go()
    else rc.queue.push(go)
  }

  private attackOn(rc: RawConn): void {
    if (rc.closed !== undefined) return
    const target = pick(this.rng, this.docs)
    const docId = target.docId
    const last = rc.last.get(docId) ?? 0
    const next = last + 1
    const consumed = (recs: RawCommand[], n = next) => {
      if (recs.some((r) => r.localRefusal === undefined)) rc.last.set(docId, n)
    }
    const r = this.rng()
    const kinds = this.rawAttacks
    const kind = kinds[Math.floor(r * kinds.length)]!
    const id = pick(this.rng, TODO_IDS)
    const own = rc.clientId
    switch (kind) {
      case "legit": {
        const [name, args] = todoCommand(this.rng, false)
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name, args, attack: kind, expect: "legit" }]))
      }
      case "invalid-args":
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "rename", args: { id: 42, title: null }, attack: kind, expect: "refuse", codes: ["invalid-args"] }]))
      case "unknown-command":
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "launch-missiles", args: {}, attack: kind, expect: "refuse", codes: ["unknown-command"] }]))
      case "proto-id": {
        const name = pick(this.rng, ["add", "toggle", "rename", "remove", "patch", "bump", "alias", "pin", "stamp"])
        const key = pick(this.rng, PROTO_KEYS)
        const args = name === "add" || name === "rename" ? { id: key, title: "x" }
          : name === "patch" ? { id: key, fields: { done: true, title: "p" } }
          : name === "alias" ? (this.rng() < 0.5 ? { from: key, to: id } : { from: id, to: key })
          : name === "stamp" ? { id: key, kind: "nan" }
          : { id: key }
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name, args, attack: `${kind}:${name}:${key}`, expect: "refuse-or-harmless", codes: ANY_REFUSAL }]))
      }
      case "proto-fields": {
        const key = pick(this.rng, PROTO_KEYS)
        const value = pick<unknown>(this.rng, [{ polluted: true, done: true }, "x", 1, null, { toString: "y" }])
        const fields = withOwnKey(key, value)
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "patch", args: { id: this.rng() < 0.3 ? pick(this.rng, PROTO_KEYS) : id, fields }, attack: `${kind}:${key}`, expect: "refuse-or-harmless", codes: ANY_REFUSAL }]))
      }
      case "alias":
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "alias", args: { from: id, to: pick(this.rng, TODO_IDS) }, attack: kind, expect: "refuse-or-harmless", codes: ANY_REFUSAL }]))
      case "stamp":
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "stamp", args: { id, kind: pick(this.rng, STAMP_KINDS) }, attack: kind, expect: "refuse-or-harmless", codes: ANY_REFUSAL }]))
      case "oversize-under-frame":
      case "oversize-over-frame": {
        // A frame of exactly the limit - 16 (reaches the hub) or + 16 (the codec refuses it).
        const target = DEFAULT_MAX_FRAME_BYTES + (kind === "oversize-under-frame" ? -16 : 16)
        const frame = (n: number) => encodeClientMessage({ type: "submit", docId, ackedClientSeq: 0, commands: [{ clientSeq: next, name: "patch", args: { id: own, fields: { blob: "x".repeat(n) } } }] }, { maxFrameBytes: 1 << 24 }).length
        const n = 1 << 19
        const len = n + (target - frame(n))
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "patch", args: { id: own, fields: { blob: "x".repeat(len) } }, attack: kind, expect: "refuse", codes: ["command-too-large"] }]))
      }
      case "oversize-mid":
        // Over half a frame: no entry this big fits a frame with headroom.
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "patch", args: { id: own, fields: { blob: "y".repeat(600 << 10) } }, attack: kind, expect: "refuse", codes: ["command-too-large"] }]))
      case "oversize-small":
        // Large but plausible: accepted, or refused by a smaller configured bound.
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "patch", args: { id: own, fields: { blob: "z".repeat(200 << 10) } }, attack: kind, expect: "refuse-or-harmless", codes: ["command-too-large"] }]))
      case "deep": {
        // Total nesting of the args 500..512 levels (512 is the canonical encoder's limit).
        const depth = 500 + Math.floor(this.rng() * 13)
        return consumed(this.submit(rc, docId, [{ clientSeq: next, name: "patch", args: { id: own, fields: { deep: nest(depth - 2) } }, attack: `${kind}:${depth}`, expect: "refuse-or-harmless", codes: ["command-too-large", "invalid-args", "state-unencodable"] }]))
      }
      case "gap": {
        this.submit(rc, docId, [{ clientSeq: last + 2, name: "note", args: { text: "gap" }, attack: kind, expect: "refuse" }])
        return
      }
      case "huge-seq": {
        this.submit(rc, docId, [{ clientSeq: 2 ** 52, name: "note", args: { text: "huge" }, attack: kind, expect: "refuse" }])
        return
      }
      case "duplicate":
      case "duplicate-in-batch": {
        if (kind === "duplicate") {
          const done = this.commands.filter((c) => c.conn === rc && c.docId === docId && c.outcome !== undefined && c.expect !== "original" && c.clientSeq <= last && c.attack !== "gap" && c.attack !== "huge-seq")
          if (done.length === 0) {
            const [name, args] = plainCommand(this.rng, TodoPlus)
            return consumed(this.submit(rc, docId, [{ clientSeq: next, name, args, attack: "legit", expect: "legit" }]))
          }
          const original = pick(this.rng, done)
          this.submit(rc, docId, [{ clientSeq: original.clientSeq, name: "note", args: { text: "duplicate" }, attack: kind, expect: "original", original }])
          return
        }
        const [name, args] = plainCommand(this.rng, TodoPlus)
        const recs = this.submit(rc, docId, [
          { clientSeq: next, name, args, attack: "legit", expect: "legit" },
          { clientSeq: next, name: "rename", args: { id, title: "twin" }, attack: kind, expect: "original" },
        ])
        ;(recs[1] as { original: RawCommand | undefined }).original = recs[0]
        return consumed(recs)
      }
    }
  }

  /** A forged connection: a replica's clientId, no secret or a guessed one. Closed after a while. */
  forge(victim: Victim): void {
    const docs = victim.docs
    if (docs.length === 0) return
    const guess = this.rng() < 0.5
    // A guess as long as a real secret: refused because it does not match, not for its length.
    const secret = `${Math.floor(this.rng() * 2 ** 48).toString(36)}-${Math.floor(this.rng() * 2 ** 48).toString(36)}-guess`
    const extra = guess ? { credentials: secret, secret } : {}
    const rc = this.connect(victim.clientId, victim.name, docs, (docId) => victim.nextClientSeq(docId) + 100, extra)
    rc.queue.push(() => {
      for (const d of docs) {
        const nextSeq = victim.nextClientSeq(d.docId)
        const [name, args] = plainCommand(this.rng, d.machine)
        const cmds = [{ clientSeq: nextSeq, name, args, attack: `forged${guess ? "+secret" : ""}:next`, expect: "refuse" as const }]
        if (nextSeq > 1) cmds.push({ clientSeq: 1, name, args, attack: `forged${guess ? "+secret" : ""}:old`, expect: "refuse" as const })
        this.submit(rc, d.docId, cmds.sort((a, b) => a.clientSeq - b.clientSeq), nextSeq + 100)
      }
    })
    this.rt.setTimer(1_500, () => this.close(rc, "The forger leaves."))
  }

  /**
   * The heavy writer: a connection of its own (`heavy-N`) on a CRDT document nobody else
   * follows, sending Automerge changes that insert and delete CHARS characters each (a few
   * hundred bytes standing for some 2 x CHARS ops of hub work), one submit at a time as soon as
   * the last is answered. The hub must make it pay: checker.ts `checkCrdtWork`.
   */
  crdtHeavy(target: HostileTarget): void {
    if (this.heavy === undefined || this.heavy.conn.closed !== undefined) {
      const clientId = `heavy-${this.nextConn}`
      const conn = this.connect(clientId, undefined, [target], () => 0, { secret: `secret-of-${clientId}-0123456789` })
      const field = target.machine.crdt![HEAVY_FIELD]!.engine.create() as CrdtField<AutomergeTextHandle>
      const updates: unknown[] = []
      field.onLocalChange((u: unknown) => updates.push(u))
      this.heavy = { conn, field, updates, next: 1 }
    }
    const h = this.heavy
    if (!h.conn.open || this.commands.some((c) => c.conn === h.conn && c.outcome === undefined)) return
    h.field.handle.splice(0, 0, "h".repeat(HEAVY_CHARS))
    h.field.handle.splice(0, HEAVY_CHARS, "")
    const engine = target.machine.crdt![HEAVY_FIELD]!.engine
    const name = `$crdt.${HEAVY_FIELD}`
    const cmds = h.updates.splice(0).map((args) => ({ clientSeq: h.next++, name, args, attack: "crdt-heavy", expect: "refuse-or-harmless" as const, codes: ANY_REFUSAL, weight: engine.weigh(args) }))
    this.submit(h.conn, target.docId, cmds)
  }

  private heavy: { readonly conn: RawConn; readonly field: CrdtField<AutomergeTextHandle>; readonly updates: unknown[]; next: number } | undefined

  /**
   * The poisoner: a connection of its own (`poison-N`) on a text document the replicas follow,
   * submitting Yjs updates to its `text` field whose values nest past what Yjs reads and writes
   * back (5,000 levels of JSON content, ContentAny or a format value; one such update, once
   * taken, made a document no hub could encode), and Automerge changes to its `am` field that
   * start far above every op counter (A.load allocates per counter up to an actor's highest: one
   * such change at 2^27, once taken, made a save that no longer loaded). Each must be refused;
   * the world's invariants judge that the document stays servable.
   */
  crdtPoison(target: HostileTarget, rng: Rng): void {
    if (this.poison === undefined || this.poison.conn.closed !== undefined) {
      const clientId = `poison-${this.nextConn}`
      const conn = this.connect(clientId, undefined, [target], () => 0, { secret: `secret-of-${clientId}-0123456789` })
      this.poison = { conn, next: 1 }
    }
    const p = this.poison
    if (!p.conn.open) return
    const kind = pick(rng, ["json", "any", "format", "far-counter"] as const)
    if (kind === "far-counter") {
      // A far counter, not 2^27: were it taken (a mutant), the world must still run to say so.
      const args = [farCounterChange(target, 10_000 + Math.floor(rng() * 10_000), `${(p.next + 16).toString(16).padStart(4, "0")}ff`)]
      this.submit(p.conn, target.docId, [{ clientSeq: p.next++, name: "$crdt.am", args, attack: `crdt-poison:${kind}`, expect: "refuse", codes: ["invalid-args"] }])
      return
    }
    const args = deepYjsUpdate(kind, 1 + Math.floor(rng() * 2 ** 30), 4_000 + Math.floor(rng() * 2_000))
    this.submit(p.conn, target.docId, [{ clientSeq: p.next++, name: "$crdt.text", args, attack: `crdt-poison:${kind}`, expect: "refuse", codes: ["invalid-args"] }])
  }

  private poison: { readonly conn: RawConn; next: number } | undefined

  /**
   * The memory hog: a connection of its own (`hog-N`) on a TodoPlus document nobody else
   * follows, patching one item with HOG_OBJECTS empty objects at a time (a few KB of arguments,
   * megabytes of the hub's memory), a submit each time it is called, until the hub answers `hub-full`;
   * then it holds its document loaded, keeping everyone else's growth out, until `hogLeaves`.
   * The hub's memory bound must hold meanwhile, and the replicas' commands it refused must land
   * once the hog has gone (the world checks both).
   */
  memoryHog(target: HostileTarget): void {
    // Until it leaves: a connection the hub or the network ended is made again (it subscribes again).
    if (this.hogLeft) return
    if (this.hog === undefined || this.hog.conn.closed !== undefined) {
      const clientId = `hog-${this.nextConn}`
      const conn = this.connect(clientId, undefined, [target], () => 0, { secret: `secret-of-${clientId}-0123456789` })
      this.hog = { conn, next: 1 }
    }
    const h = this.hog
    if (h.conn.errors.includes("hub-full")) this.hogToldFull = true
    // Not waiting for answers: as fast as it may, until told the hub is full.
    if (!h.conn.open || h.conn.errors.includes("hub-full")) return
    const cmds = h.next === 1
      ? [{ clientSeq: h.next++, name: "add", args: { id: "hog", title: "hog" }, attack: "memory-hog", expect: "refuse-or-harmless" as const }]
      : [{ clientSeq: h.next, name: "patch", args: { id: "hog", fields: { [`f${h.next++}`]: Array.from({ length: HOG_OBJECTS }, () => ({})) } }, attack: "memory-hog", expect: "refuse-or-harmless" as const }]
    this.submit(h.conn, target.docId, cmds)
  }

  /**
   * The CPU hog: CPU_HOG_IDS connections of its own (`cpuhog-N`, a new one where the hub or
   * the network ended the last), behind the address every client of the world shares, on
   * SimBurner documents nobody else follows, each sending a submit of CPU_HOG_BURNS commands
   * of MAX_BURN_MS to each each time it is called, without waiting for answers: as fast as
   * the hub reads it. The hub must slice and charge them, each client and the address (the
   * world checks all three), while the replicas behind the same address go on.
   */
  cpuHog(targets: ReadonlyArray<HostileTarget>): void {
    if (this.cpuHogLeft) return
    for (let i = 0; i < CPU_HOG_IDS; i++) {
      if (this.cpuHogConns[i] === undefined || this.cpuHogConns[i]!.conn.closed !== undefined) {
        const clientId = `cpuhog-${this.nextConn}`
        this.cpuHogConns[i] = { conn: this.connect(clientId, undefined, targets, () => 0, { secret: `secret-of-${clientId}-0123456789` }), next: new Map() }
      }
      const h = this.cpuHogConns[i]!
      if (!h.conn.open) continue
      for (const { docId } of targets) {
        const next = () => {
          const n = (h.next.get(docId) ?? 0) + 1
          h.next.set(docId, n)
          return n
        }
        this.submit(h.conn, docId, Array.from({ length: CPU_HOG_BURNS }, () => ({ clientSeq: next(), name: "burn", args: { ms: MAX_BURN_MS }, attack: "cpu-hog", expect: "refuse-or-harmless" as const })))
      }
    }
  }

  cpuHogLeaves(): void {
    this.cpuHogLeft = true
    for (const h of this.cpuHogConns) this.close(h.conn, "Done.")
  }

  /**
   * Each client the CPU hog connected as (each has a work budget of its own): how many of its
   * commands the hub judged and applied, and the virtual time from its first submit to its last answer.
   */
  get cpuHogClients(): Array<{ readonly clientId: string; readonly judged: number; readonly spanMs: number }> {
    const by = new Map<RawConn, RawCommand[]>()
    for (const c of this.commands) if (c.attack === "cpu-hog") by.set(c.conn, [...(by.get(c.conn) ?? []), c])
    return [...by].map(([conn, cmds]) => {
      const judged = cmds.filter((c) => c.outcome?.startsWith("seq:") === true)
      return { clientId: conn.clientId, judged: judged.length, spanMs: judged.length === 0 ? 0 : Math.max(...judged.map((c) => c.answeredAt ?? c.sentAt)) - Math.min(...cmds.map((c) => c.sentAt)) }
    })
  }

  private readonly cpuHogConns: Array<{ readonly conn: RawConn; readonly next: Map<string, number> }> = []
  private cpuHogLeft = false

  /** The hog leaves: its document, followed by nobody, may go when room is needed. */
  hogLeaves(): void {
    this.hogLeft = true
    if (this.hog !== undefined) this.close(this.hog.conn, "Done.")
  }

  private hogLeft = false
  private hogToldFull = false

  /** For the log. */
  get hogStatus(): string {
    const h = this.hog
    if (h === undefined) return "never connected"
    const mine = this.commands.filter((c) => c.attack === "memory-hog")
    return `${h.conn.clientId} open=${h.conn.open} errors=${h.conn.errors.join(",")} sent=${mine.length} outcomes=${mine.map((c) => c.outcome ?? "none").slice(-5).join(" ")}`
  }

  /** Whether the hog was told the hub is full. */
  get hogFilled(): boolean {
    return this.hogToldFull || this.hog?.conn.errors.includes("hub-full") === true
  }

  private hog: { readonly conn: RawConn; next: number } | undefined

  /** Closes every connection (end of the active phase). */
  closeAll(): void {
    for (const rc of this.conns) this.close(rc, "Done.")
    this.raw = undefined
  }
}
