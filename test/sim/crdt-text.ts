/**
 * The simulator's typists: replicas edit the collaborative text of a SimText document
 * (machines.ts) the way an app does, through the live Y.Text the library hands out
 * (`doc.crdt.text.insert/delete`); the library turns each local change into the field's merge
 * command (coalesced while one is in flight). Every insert is a unique marker, `⟨r2:17⟩`,
 * placed between markers, and every delete removes whole markers, so the text is always a
 * sequence of markers and the checker (crdt-check.ts) can say which edits survived.
 *
 * Which command carried an edit: the library's outbox submits, in one command, every local
 * change of the field made since its previous submit (core/crdt/outbox.ts), and it submits
 * through the document's own `submit`. The typist wraps that method on each opened document
 * (an observer: arguments and receipt pass through untouched) and hands the edits made since
 * the last merge submit to the command it sees.
 *
 * Determinism: a Y.Doc draws its clientID from crypto. Before the first local edit on each
 * field object (a reload makes a new one) the typist gives it a fresh clientID from the
 * seed's own stream, so a seed replays exactly and no two writers share an ID.
 */
import type * as Y from "yjs"
import type { Doc, Receipt } from "../../core/index.js"
import { crdtCommandName } from "../../core/crdt/fields.js"
import type { Rng } from "./workload.js"
import type { Submitted } from "./checker.js"

/** The field the typists write. */
export const TEXT_FIELD = "text"
const MERGE = crdtCommandName(TEXT_FIELD)

/** A marker: `⟨r2:17⟩`. */
export const MARKER = /⟨r\d+:\d+⟩/g

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
  readonly ledger: TextLedger = { edits: [], inserts: new Map() }
  /** Edits made on each open document since its last merge submit. */
  private readonly unsent = new WeakMap<Doc<any>, TextEdit[]>()
  /** Field objects that have their clientID from the seed. */
  private readonly seeded = new WeakSet<Y.Doc>()
  private readonly usedIds = new Set<number>()
  private readonly counters = new Map<string, number>()

  constructor(private readonly rng: Rng, private readonly now: () => number) {}

  /** Watches a freshly opened document's merge submits (before the app types into it). */
  attach(doc: Doc<any>, record: RecordMerge): void {
    const list: TextEdit[] = []
    this.unsent.set(doc, list)
    const submit = doc.submit.bind(doc) as (name: string, args: unknown) => Receipt
    Object.defineProperty(doc, "submit", {
      configurable: true,
      writable: true,
      value: (name: string, args: unknown): Receipt => {
        const receipt = submit(name, args)
        if (name === MERGE) {
          const carrier = record(name, args, receipt)
          for (const e of list.splice(0)) e.carrier = carrier
        }
        return receipt
      },
    })
  }

  /** One local edit by `replica` on its open `doc`: an insert of a new marker, or a delete of 1-3 markers. */
  edit(replica: string, doc: Doc<any>, deleteShare = 0.3): string {
    const text = (doc.crdt as Record<string, Y.Text>)[TEXT_FIELD]!
    this.seedClientId(text.doc!)
    const current = text.toString()
    const spans = [...current.matchAll(MARKER)].map((m) => ({ marker: m[0], at: m.index!, end: m.index! + m[0].length }))
    const list = this.unsent.get(doc)!
    if (spans.length > 0 && this.rng() < deleteShare) {
      const first = Math.floor(this.rng() * spans.length)
      const last = Math.min(spans.length - 1, first + Math.floor(this.rng() * 3))
      const covered = spans.slice(first, last + 1)
      const e: TextEdit = { kind: "delete", replica, markers: covered.map((s) => s.marker), at: this.now(), carrier: undefined }
      this.ledger.edits.push(e)
      list.push(e)
      text.delete(covered[0]!.at, covered[covered.length - 1]!.end - covered[0]!.at)
      return `delete ${e.markers.join("")}`
    }
    const n = (this.counters.get(replica) ?? 0) + 1
    this.counters.set(replica, n)
    const marker = `⟨${replica}:${n}⟩`
    // Between two markers (or at either end), never inside one.
    const boundaries = [0, ...spans.map((s) => s.end)]
    const pos = boundaries[Math.floor(this.rng() * boundaries.length)]!
    const e: TextEdit = { kind: "insert", replica, markers: [marker], at: this.now(), carrier: undefined }
    this.ledger.edits.push(e)
    this.ledger.inserts.set(marker, e)
    list.push(e)
    text.insert(pos, marker)
    return `insert ${marker} at ${pos}`
  }

  private seedClientId(ydoc: Y.Doc): void {
    if (this.seeded.has(ydoc)) return
    let id: number
    do id = 1 + Math.floor(this.rng() * 0x7fff_fffe)
    while (this.usedIds.has(id))
    this.usedIds.add(id)
    ydoc.clientID = id
    this.seeded.add(ydoc)
  }
}
