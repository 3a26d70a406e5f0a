/**
 * The raw reading of a sync message (adapters/automerge/admit.ts `countSyncMessage`) that lets
 * the hub's automerge-repo route and a peer replica refuse one before `A.decodeSyncMessage`
 * makes an object of every entry (8 MB of empty `have` entries were 4 million objects and took
 * the hub's heap). It must count what Automerge decodes, on every message Automerge's own sync
 * makes (v1 and v2, first contact, whole documents, concurrent heads, reconnects), and it must
 * never accept bytes Automerge decodes to more entries than it counted.
 */
import * as A from "@automerge/automerge"
import fc from "fast-check"
import { MAX_SYNC_BLOOM_BYTES, MAX_SYNC_CHANGES, MAX_SYNC_HASHES, admitSyncMessage, countSyncMessage } from "../adapters/automerge/admit.js"
import { haveFlood, varint } from "./support/automerge-sync-bytes.js"

const countsOf = (d: A.DecodedSyncMessage) => ({
  heads: d.heads.length,
  need: d.need.length,
  have: d.have.length,
  lastSync: d.have.reduce((n, h) => n + h.lastSync.length, 0),
  bloomBytes: d.have.reduce((n, h) => n + h.bloom.length, 0),
  changes: d.changes.length,
  changeBytes: d.changes.reduce((n, c) => n + c.length, 0),
})

type Action =
  | { readonly kind: "edit"; readonly peer: number; readonly key: string; readonly value: number; readonly text: boolean }
  | { readonly kind: "sync"; readonly from: number; readonly to: number }
  | { readonly kind: "reconnect"; readonly a: number; readonly b: number }

const PEERS = 3
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant("edit" as const), peer: fc.nat(PEERS - 1), key: fc.constantFrom("a", "b", "c"), value: fc.integer(), text: fc.boolean() }),
  fc.record({ kind: fc.constant("sync" as const), from: fc.nat(PEERS - 1), to: fc.nat(PEERS - 1) }),
  fc.record({ kind: fc.constant("reconnect" as const), a: fc.nat(PEERS - 1), b: fc.nat(PEERS - 1) }),
)

/** Every sync message three peers' Automerge makes while they edit and sync as `actions` say. */
const messagesOf = (actions: ReadonlyArray<Action>, shareBase: boolean): Uint8Array[] => {
  const base = A.from<Record<string, unknown>>({ t: "" })
  const docs = Array.from({ length: PEERS }, (_, i) => (shareBase ? A.clone(base, { actor: `0${i}`.repeat(16) }) : A.init<Record<string, unknown>>({ actor: `1${i}`.repeat(16) })))
  const states = new Map<string, A.SyncState>()
  const state = (from: number, to: number) => states.get(`${from}>${to}`) ?? A.initSyncState()
  const out: Uint8Array[] = []
  for (const x of actions) {
    if (x.kind === "edit") {
      docs[x.peer] = A.change(docs[x.peer]!, (d) => {
        if (x.text && typeof d.t === "string") A.splice(d, ["t"], 0, 0, String(x.value))
        else d[x.key] = x.value
      })
    } else if (x.kind === "reconnect") {
      states.delete(`${x.a}>${x.b}`)
      states.delete(`${x.b}>${x.a}`)
    } else if (x.from !== x.to) {
      // A few rounds each way, as a link would run them.
      for (let round = 0; round < 3; round++) {
        for (const [f, t] of [[x.from, x.to], [x.to, x.from]] as const) {
          const [next, message] = A.generateSyncMessage(docs[f]!, state(f, t))
          states.set(`${f}>${t}`, next)
          if (message === null) continue
          out.push(message)
          const [doc, theirs] = A.receiveSyncMessage(docs[t]!, state(t, f), message)
          docs[t] = doc
          states.set(`${t}>${f}`, theirs)
        }
      }
    }
  }
  return out
}

test("every message Automerge's sync makes is counted as Automerge decodes it, and admitted", () => {
  let seen = 0
  fc.assert(
    fc.property(fc.array(action, { maxLength: 40 }), fc.boolean(), (actions, shareBase) => {
      for (const m of messagesOf(actions, shareBase)) {
        seen++
        const counted = countSyncMessage(m)
        expect(counted).toEqual(countsOf(A.decodeSyncMessage(m)))
        const admitted = admitSyncMessage(m)
        if (typeof admitted === "string") throw new Error(`an honest message refused: ${admitted}`)
        // What the routes hand receiveSyncMessage is the same message.
        expect(Buffer.from(A.encodeSyncMessage(admitted)).equals(Buffer.from(m))).toBe(true)
      }
    }),
    // About 1.5 messages a run: 60 runs once made 93 (a CI run), under the floor below.
    { numRuns: 150 },
  )
  expect(seen).toBeGreaterThan(100)
})

const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"))

test("messages of any lists within the bounds are counted exactly; past them, refused", () => {
  // Real Bloom filters and changes to build with (encodeSyncMessage checks both).
  let doc = A.from<{ n: number }>({ n: 0 })
  for (let i = 1; i < 30; i++) doc = A.change(doc, (d) => { d.n = i })
  const changes = A.getAllChanges(doc)
  // A first message's have entry holds a Bloom filter of every change of its document.
  const sizes = [1, 5, 29].map((n) => {
    let d = A.init<{ n: number }>()
    for (let i = 0; i < n; i++) d = A.change(d, (x) => { x.n = i })
    return A.decodeSyncMessage(A.generateSyncMessage(d, A.initSyncState())[1]!).have[0]!.bloom
  })
  const blooms = [new Uint8Array(), ...sizes]
  fc.assert(
    fc.property(
      fc.array(hash, { maxLength: 12 }),
      fc.array(hash, { maxLength: 12 }),
      fc.array(fc.record({ lastSync: fc.array(hash, { maxLength: 4 }), bloom: fc.constantFrom(...blooms) }), { maxLength: 18 }),
      fc.array(fc.constantFrom(...changes), { maxLength: 8 }),
      fc.constantFrom(undefined, "v1", "v2"),
      fc.constantFrom(undefined, [], ["supports-sync-reset"], ["read-only", "supports-sync-reset"]),
      (heads, need, have, chunks, type, caps) => {
        const message = { heads, need, have, changes: chunks, ...(type !== undefined ? { type } : {}), ...(caps !== undefined ? { supportedCapabilities: caps } : {}) }
        const bytes = A.encodeSyncMessage(message as A.DecodedSyncMessage)
        const counted = countSyncMessage(bytes)
        if (have.length > 16) expect(counted).toMatch(/more than 16 have entries/)
        else expect(counted).toEqual(countsOf(A.decodeSyncMessage(bytes)))
      },
    ),
    { numRuns: 300 },
  )
})

test("bytes it accepts never decode to more than it counted (mutated, cut and spliced messages)", () => {
  let doc = A.from<{ t: string }>({ t: "hello" })
  doc = A.change(doc, (d) => A.splice(d, ["t"], 5, 0, " world"))
  const [s1, first] = A.generateSyncMessage(A.init(), A.initSyncState())
  void s1
  const [, whole] = A.generateSyncMessage(doc, A.receiveSyncMessage(doc, A.initSyncState(), first!)[1])
  const edits = (peer: number): Action[] => [1, 2, 3].map((value) => ({ kind: "edit", peer, key: "a", value, text: value % 2 === 0 }))
  const scenario: Action[] = [...edits(0), ...edits(1), { kind: "sync", from: 0, to: 1 }, ...edits(2), { kind: "sync", from: 2, to: 1 }, { kind: "reconnect", a: 0, b: 1 }, ...edits(0), { kind: "sync", from: 0, to: 1 }]
  const samples = [first!, whole!, A.generateSyncMessage(doc, A.initSyncState())[1]!, ...messagesOf(scenario, true), ...messagesOf(scenario, false)]
  let accepted = 0
  fc.assert(
    fc.property(
      fc.constantFrom(...samples),
      fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), op: fc.constantFrom("set", "insert", "delete") }), { minLength: 1, maxLength: 4 }),
      fc.option(fc.nat()),
      (sample, edits, cut) => {
        const b = [...sample]
        for (const e of edits) {
          const at = b.length === 0 ? 0 : e.at % b.length
          if (e.op === "set") b[at] = e.byte
          else if (e.op === "insert") b.splice(at, 0, e.byte)
          else b.splice(at, 1)
        }
        const bytes = new Uint8Array(cut === null ? b : b.slice(0, cut % (b.length + 1)))
        const counted = countSyncMessage(bytes)
        if (typeof counted === "string") return
        accepted++
        let decoded: A.DecodedSyncMessage
        try {
          decoded = A.decodeSyncMessage(bytes)
        } catch {
          return // Automerge refuses it too: the routes close the socket.
        }
        expect(countsOf(decoded)).toEqual(counted)
      },
    ),
    { numRuns: 3_000 },
  )
  expect(accepted).toBeGreaterThan(100)
})

/** Bytes that count every index read (typed arrays read through a Proxy: no copy). */
const counting = (bytes: Uint8Array) => {
  let reads = 0
  const proxy = new Proxy(bytes, {
    get: (target, prop) => {
      if (typeof prop === "string" && /^\d+$/.test(prop)) reads++
      const v = (target as unknown as Record<string | symbol, unknown>)[prop]
      return typeof v === "function" ? v.bind(target) : v
    },
  })
  return { bytes: proxy, reads: () => reads }
}


test("the 8 MB flood of empty have entries is refused after reading a few bytes, never decoded", () => {
  const H = 4_000_000
  // 0x42 | heads [] | need [] | H x {lastSync [], bloom b""} | changes []
  const flood = haveFlood(H)
  const c = counting(flood)
  expect(admitSyncMessage(c.bytes)).toMatch(/more than 16 have entries/)
  expect(c.reads()).toBeLessThan(16)

  // The same bound on every list, each refused from its count.
  const hashesFlood = new Uint8Array([0x42, ...varint(MAX_SYNC_HASHES + 1), ...new Uint8Array(32 * (MAX_SYNC_HASHES + 1)), 0, 0, 0])
  const h = counting(hashesFlood)
  expect(admitSyncMessage(h.bytes)).toMatch(/more than 4096 hashes/)
  expect(h.reads()).toBeLessThan(16)
  const changesFlood = new Uint8Array([0x42, 0, 0, 0, ...varint(MAX_SYNC_CHANGES + 1), ...new Uint8Array(MAX_SYNC_CHANGES + 1)])
  const ch = counting(changesFlood)
  expect(admitSyncMessage(ch.bytes)).toMatch(/more than 262144 changes/)
  expect(ch.reads()).toBeLessThan(16)
  // Short changes are refused at the first (a chunk's header alone is 10 bytes).
  const emptyChanges = new Uint8Array([0x42, 0, 0, 0, ...varint(100_000), ...new Uint8Array(100_000)])
  const e = counting(emptyChanges)
  expect(admitSyncMessage(e.bytes)).toMatch(/shorter than any Automerge chunk/)
  expect(e.reads()).toBeLessThan(16)
})

test("Bloom filters Automerge cannot use are refused: no bits, probes by the billion, more bytes than the bound", () => {
  const withBloom = (bloom: number[]) => new Uint8Array([0x42, 0, 0, 1, 0, ...varint(bloom.length), ...bloom, 0])
  // Automerge panics on the first (a remainder by zero) and allocates per probe on the second.
  expect(countSyncMessage(withBloom([1, 0, 7]))).toMatch(/not what Automerge makes/)
  expect(countSyncMessage(withBloom([1, 10, ...varint(2 ** 31), 0, 0]))).toMatch(/not what Automerge makes/)
  expect(countSyncMessage(withBloom([1, 10, 7, 0]))).toMatch(/not as long as its entries/)
  expect(countSyncMessage(withBloom([1, 10, 7, 0, 0]))).toEqual(expect.objectContaining({ have: 1, bloomBytes: 5 }))
  const entries = Math.ceil((MAX_SYNC_BLOOM_BYTES * 8) / 10) + 8
  const big = [...varint(entries), 10, 7, ...new Uint8Array(Math.ceil((entries * 10) / 8))]
  expect(countSyncMessage(withBloom(big))).toMatch(/Bloom filters have more than/)
})
