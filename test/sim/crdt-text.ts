/**
 * The simulator's typists: replicas edit the collaborative texts of a SimText document
 * (machines.ts) the way an app does, through the live objects the library hands out: the
 * Y.Text of `text` (`doc.crdt.text.insert/delete`) and the Automerge text of `am`
 * (`doc.crdt.am.splice`), and at v2 the Y.Text of the added field `notes`; the library turns each local change into the field's merge command
 * (coalesced while one is in flight). Every insert is a unique marker, `⟨r2:17⟩`,
 * placed between markers, and every delete removes whole markers, so the text is always a
 * sequence of markers and the checker (crdt-check.ts) can say which edits survived.
 *
 * Which command carried an edit: the library's outbox submits, in one command, every local
 * change of a field made since its previous submit of that field (core/crdt/outbox.ts), and it
 * submits through the document's own `submit`. The typist wraps that method on each opened
 * document (an observer: arguments and receipt pass through untouched) and hands the edits of
 * the field made since its last merge submit to the command it sees.
 *
 * After a refusal the library submits other commands in the refused ones' place
 * (core/crdt/replica.ts `refused`), through the same `submit`. A Yjs change refused only for
 * needing a refused one goes again as the same bytes, at once, from a queue, or from the outbox
 * after a restart: the edits it carried move to the command that carries it now (the same
 * writer's: another replica's delete of the same marker is the same bytes too). A tombstone or
 * an Automerge remake (submitted inside `refused`) takes none of the edits not yet sent. What a
 * remake carries is not followed: the checker lets an edit whose command was told `resent` in
 * an Automerge field land or not.
 *
 * Determinism: a Y.Doc draws its clientID and an Automerge field its actor from crypto, and
 * Automerge stamps each change with Date.now(). Before the first local edit on each field
 * object (a reload makes a new one) the typist gives it a fresh clientID or actor from the
 * seed's own stream (no two writers share one), and it runs Automerge edits with Date.now
 * reading virtual time, so a seed replays exactly.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import type { Doc, Receipt } from "../../core/index.js"
import { hashBytes } from "../../core/hash.js"
import { crdtCommandName } from "../../core/crdt/fields.js"
import type { AutomergeTextHandle } from "../../adapters/automerge/index.js"
import type { Rng } from "./workload.js"
import type { Submitted } from "./checker.js"

/** How a typist reads and edits one kind of text field, and gives its writer an identity of the seed's. */
interface TextAccess {
  read(handle: unknown): string
  insert(handle: unknown, at: number, s: string): void
  remove(handle: unknown, at: number, n: number): void
  /** The object that carries the writer identity (a new one after a reload). */
  identity(handle: unknown): object
  seed(handle: unknown, id: number): void
}

const yjsText: TextAccess = {
  read: (h) => (h as Y.Text).toString(),
  insert: (h, at, s) => (h as Y.Text).insert(at, s),
  remove: (h, at, n) => (h as Y.Text).delete(at, n),
  identity: (h) => (h as Y.Text).doc!,
  seed: (h, id) => { (h as Y.Text).doc!.clientID = id },
}

const automergeText: TextAccess = {
  read: (h) => (h as AutomergeTextHandle).text,
  insert: (h, at, s) => (h as AutomergeTextHandle).splice(at, 0, s),
  remove: (h, at, n) => (h as AutomergeTextHandle).splice(at, n),
  identity: (h) => h as object,
  // The handle's own document, cloned under an actor of the seed's (same history).
  seed: (h, id) => (h as AutomergeTextHandle).set(A.clone((h as AutomergeTextHandle).doc, { actor: id.toString(16).padStart(32, "0") })),
}

/** The text fields of SimText and SimTextV2 (machines.ts) and how each is typed into. */
export const TEXT_FIELDS: Readonly<Record<string, TextAccess>> = { text: yjsText, am: automergeText, notes: yjsText }
/** The version of the text's machine that has each field: `notes` is SimTextV2's (an added field). */
export const FIELD_SINCE: Readonly<Record<string, number>> = { text: 1, am: 1, notes: 2 }
/** The fields an app running version `v` of the text's machine has. */
export const fieldsAt = (v: number): string[] => Object.keys(TEXT_FIELDS).filter((f) => FIELD_SINCE[f]! <= v)
const AUTOMERGE = new Set(["am"])
/** Whether this runs inside the library's handling of a refusal (core/crdt/replica.ts `refused`). */
const insideRefused = (): boolean => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 16
  try {
    return new Error().stack?.includes(".refused ") === true
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** Whether a text field is Automerge's (what a remake carries is not followed there). */
export const isAutomergeField = (field: string): boolean => AUTOMERGE.has(field)

/** A marker: `⟨r2:17⟩`, or a pasted one carrying tens of KiB, `⟨r2:18:xxxx...⟩`. */
export const MARKER = /⟨r\d+:\d+(?::[a-z]+)?⟩/g

/** A marker as failure lines and the trace name it (a pasted one without its payload). */
export const label = (marker: string): string => marker.replace(/:([a-z]+)⟩$/, (_, p: string) => `+${p.length}⟩`)

export interface TextEdit {
  readonly kind: "insert" | "delete"
  readonly replica: string
  /** insert: the one marker it wrote; delete: every marker it removed from the writer's view. */
  readonly markers: ReadonlyArray<string>
  /** Virtual time it was made. */
  readonly at: number
  /** The merge command that carried it; undefined while (or if forever) unsent. */
  carrier: Carrier | undefined
}

/**
 * A merge command in the simulation's ledger: its key, and its ledger entry (the key alone is
 * not enough: a command lost with its process before it was stored leaves its clientSeq free,
 * and the next incarnation numbers a new command with it).
 */
export interface Carrier {
  readonly key: string
  readonly entry: Submitted
}

export interface TextLedger {
  readonly edits: TextEdit[]
  /** Each marker's insert. */
  readonly inserts: Map<string, TextEdit>
}

/** What the simulation does with a merge command the library submitted: its ledger entry (undefined: refused locally). */
export type RecordMerge = (name: string, args: unknown, receipt: Receipt) => Carrier | undefined

export class Typists {
  /** Per field, every edit typed into it. */
  readonly ledgers = new Map<string, TextLedger>(Object.keys(TEXT_FIELDS).map((f) => [f, { edits: [], inserts: new Map() }]))
  /** Per open document and field, the edits made since the field's last merge submit. */
  private readonly unsent = new WeakMap<Doc<any>, Map<string, TextEdit[]>>()
  /** Field objects whose writer identity is the seed's. */
  private readonly seeded = new WeakSet<object>()
  private readonly usedIds = new Set<number>()
  private readonly counters = new Map<string, number>()
  /**
   * Per writer (client id), document, merge command and change bytes: the edits that change
   * carries (across restarts: the writer's outbox holds the bytes). The writer is part of the
   * key because two replicas deleting the same marker make the same bytes (a Yjs update that
   * only deletes names the deleted item, not who deleted it): the second is not the first again.
   */
  private readonly carriedBy = new Map<string, TextEdit[]>()
  /** Each Yjs edit's update, as the field hands it to the outbox. */
  private readonly updateOf = new WeakMap<TextEdit, Uint8Array>()

  constructor(private readonly rng: Rng, private readonly now: () => number) {}

  /** Watches a freshly opened document's merge submits (before the app types into it). */
  attach(doc: Doc<any>, record: RecordMerge): void {
    const lists = new Map(Object.keys(TEXT_FIELDS).map((f) => [crdtCommandName(f), [] as TextEdit[]]))
    this.unsent.set(doc, new Map(Object.keys(TEXT_FIELDS).map((f) => [f, lists.get(crdtCommandName(f))!])))
    const submit = doc.submit.bind(doc) as (name: string, args: unknown) => Receipt
    Object.defineProperty(doc, "submit", {
      configurable: true,
      writable: true,
      value: (name: string, args: unknown): Receipt => {
        const receipt = submit(name, args)
        const list = lists.get(name)
        if (list !== undefined) {
          const carrier = record(name, args, receipt)
          const key = args instanceof Uint8Array ? `${doc.clientId}|${doc.docId}|${name}|${hashBytes(args)}` : undefined
          const before = key === undefined ? undefined : this.carriedBy.get(key)
          // The same change again (after a refusal): what it carried goes with it. A tombstone
          // or a remake, made while a refusal is handled, carries none of the unsent edits.
          const edits = before ?? (insideRefused() ? [] : list.splice(0, this.carriedCount(list, args)))
          for (const e of edits) e.carrier = carrier
          if (key !== undefined) this.carriedBy.set(key, edits)
        }
        return receipt
      },
    })
  }

  /**
   * One local edit by `replica` on `field` of its open `doc`: an insert of a new marker (of
   * `pasteBytes` characters: a paste), or a delete of 1-3 markers.
   */
  edit(replica: string, doc: Doc<any>, field: string, pasteBytes = 0, deleteShare = 0.3): string {
    const access = TEXT_FIELDS[field]!
    const handle = (doc.crdt as Record<string, unknown>)[field]
    this.seedIdentity(access, handle)
    const current = access.read(handle)
    const spans = [...current.matchAll(MARKER)].map((m) => ({ marker: m[0], at: m.index!, end: m.index! + m[0].length }))
    const list = this.unsent.get(doc)!.get(field)!
    const ledger = this.ledgers.get(field)!
    if (pasteBytes === 0 && spans.length > 0 && this.rng() < deleteShare) {
      const first = Math.floor(this.rng() * spans.length)
      const last = Math.min(spans.length - 1, first + Math.floor(this.rng() * 3))
      const covered = spans.slice(first, last + 1)
      const e: TextEdit = { kind: "delete", replica, markers: covered.map((s) => s.marker), at: this.now(), carrier: undefined }
      ledger.edits.push(e)
      list.push(e)
      this.captured(e, handle, () => this.timed(field, () => access.remove(handle, covered[0]!.at, covered[covered.length - 1]!.end - covered[0]!.at)))
      return `delete ${e.markers.map(label).join("")} from ${field}`
    }
    const n = (this.counters.get(replica) ?? 0) + 1
    this.counters.set(replica, n)
    const marker = pasteBytes > 0 ? `⟨${replica}:${n}:${String.fromCharCode(97 + (n % 26)).repeat(pasteBytes)}⟩` : `⟨${replica}:${n}⟩`
    // Between two markers (or at either end), never inside one.
    const boundaries = [0, ...spans.map((s) => s.end)]
    const pos = boundaries[Math.floor(this.rng() * boundaries.length)]!
    const e: TextEdit = { kind: "insert", replica, markers: [marker], at: this.now(), carrier: undefined }
    ledger.edits.push(e)
    ledger.inserts.set(marker, e)
    list.push(e)
    this.captured(e, handle, () => this.timed(field, () => access.insert(handle, pos, marker)))
    return `insert ${label(marker)} into ${field} at ${pos}`
  }

  /** Automerge stamps a change with Date.now(): virtual time instead, so the change is the same on every run of the seed. */
  private timed(field: string, edit: () => void): void {
    if (!AUTOMERGE.has(field)) return edit()
    const wall = Date.now
    Date.now = () => this.now()
    try {
      edit()
    } finally {
      Date.now = wall
    }
  }

  /** A Yjs edit's update (one edit is one transaction, so one update): how its command is found. */
  private captured(e: TextEdit, handle: unknown, edit: () => void): void {
    const ydoc = handle instanceof Y.Text ? handle.doc : null
    if (ydoc === null) return edit()
    const keep = (update: Uint8Array) => void this.updateOf.set(e, update)
    ydoc.on("update", keep)
    try {
      edit()
    } finally {
      ydoc.off("update", keep)
    }
  }

  /**
   * How many of the unsent edits (oldest first) a merge command carries. One flush of the
   * outbox may cut what is buffered into several commands (core/crdt/outbox.ts: consecutive
   * runs within the field's bounds), so not every unsent edit goes in the first: for a Yjs
   * field the command's bytes are the merge of its run's updates (the field's `coalesce`).
   * All of them where the edits' updates are not known (Automerge: no paste is cut there).
   */
  private carriedCount(list: ReadonlyArray<TextEdit>, args: unknown): number {
    const updates = list.map((e) => this.updateOf.get(e))
    if (!(args instanceof Uint8Array) || updates.some((u) => u === undefined)) return list.length
    const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i])
    for (let k = 1; k < list.length; k++) {
      const run = updates.slice(0, k) as Uint8Array[]
      if (same(k === 1 ? run[0]! : Y.mergeUpdates(run), args)) return k
    }
    return list.length
  }

  private seedIdentity(access: TextAccess, handle: unknown): void {
    const carrier = access.identity(handle)
    if (this.seeded.has(carrier)) return
    let id: number
    do id = 1 + Math.floor(this.rng() * 0x7fff_fffe)
    while (this.usedIds.has(id))
    this.usedIds.add(id)
    access.seed(handle, id)
    this.seeded.add(carrier)
  }
}
