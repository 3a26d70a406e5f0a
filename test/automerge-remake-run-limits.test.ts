/**
 * Guards the run bounds of adapters/automerge/remake.ts `remakeWithout`: when the hub refuses
 * an Automerge change, the writer's later changes are made again as one change per run of
 * them, and a run holds at most `limits.bytes` bytes and `limits.ops` ops as they were (the
 * field's update limits, within the command budget), with a change past an eighth of either
 * limit alone. Past those bounds a remade run is more than the hub takes in one update, and it
 * is refused in turn (`crdt-too-large`): edits the hub never refused are lost.
 *
 * No test noticed the run check weakened (`>` to `>=`) or either half of it dropped, nor the
 * `large` check's ops half dropped, nor the ops of a change counted one short (mutation review):
 * the older tests' later changes were each past an eighth of the limits, so every run was one
 * change. Here: runs of small changes one under, at and one over each limit (remakeWithout,
 * exact sizes measured from the changes themselves), the eighth at its edge, and the user's view
 * through a hub: what comes after a refused paste lands whole, in updates the hub takes.
 */
import * as A from "@automerge/automerge"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { automergeText } from "../adapters/automerge/index.js"
import { remakeWithout, type RunLimits } from "../adapters/automerge/remake.js"

type Text = { text: string }
const HUGE = 1 << 30

/**
 * A document "abc" (R), a refused paste, then one later change per entry of `later` appending
 * that many characters (character i of change k is the letter k: each change's text is
 * recognisable). The later changes' sizes as they were: bytes, and ops (one per character,
 * counted independently of the remake: a text insert is one op a character).
 */
const history = (later: ReadonlyArray<number>) => {
  let doc = A.from<Text>({ text: "" }, { actor: "aa" })
  doc = A.change(doc, (d) => A.splice(d, ["text"], 0, 0, "abc"))
  const rHeads = A.getHeads(doc)
  doc = A.change(doc, (d) => A.splice(d, ["text"], 3, 0, "P".repeat(50)))
  const refused = [A.getLastLocalChange(doc)!]
  const bytes: number[] = []
  let expected = "abc"
  later.forEach((n, k) => {
    const s = String.fromCharCode(97 + (k % 26)).repeat(n)
    doc = A.change(doc, (d) => A.splice(d, ["text"], d.text.length, 0, s))
    bytes.push(A.getLastLocalChange(doc)!.length)
    expected += s
  })
  return { doc, rHeads, refused, bytes, ops: [...later], expected }
}

const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

/**
 * remakeWithout under `limits`: the number of changes made, after checking nothing was lost:
 * the remade document, and R with the remade changes applied (what the hub and every other
 * replica get), both hold every later change's text and nothing of the paste.
 */
const remadeRuns = (h: ReturnType<typeof history>, limits: RunLimits): number => {
  const r = remakeWithout(h.doc, h.refused, "bb", limits)
  expect(r).toBeDefined()
  expect(r!.doc.text === h.expected).toBe(true)
  const [elsewhere] = A.applyChanges(A.clone(A.view(h.doc, h.rHeads)), [...r!.changes])
  expect(elsewhere.text === h.expected).toBe(true)
  return r!.changes.length
}

describe("remakeWithout: a run of later changes within the limits, as they were", () => {
  // Ten changes of 60 characters: each well under an eighth of their total (not `large`).
  const h = history(Array(10).fill(60))
  const bytes = sum(h.bytes)
  const ops = sum(h.ops)

  test("bytes: a run one under or at the limit is one change; one over, two", () => {
    expect(Math.max(...h.bytes) * 8).toBeLessThan(bytes - 1) // none goes alone
    expect(remadeRuns(h, { bytes: bytes + 1, ops: HUGE })).toBe(1)
    expect(remadeRuns(h, { bytes, ops: HUGE })).toBe(1)
    expect(remadeRuns(h, { bytes: bytes - 1, ops: HUGE })).toBe(2)
  })

  test("ops: a run one under or at the limit is one change; one over, two", () => {
    expect(ops).toBe(600)
    expect(remadeRuns(h, { bytes: HUGE, ops: ops + 1 })).toBe(1)
    expect(remadeRuns(h, { bytes: HUGE, ops })).toBe(1)
    expect(remadeRuns(h, { bytes: HUGE, ops: ops - 1 })).toBe(2)
  })

  test("a change at an eighth of a limit joins its neighbours in a run; one past it goes alone", () => {
    // Four small changes, a 400-character one, four small ones: the large one alone splits
    // them into three runs.
    const g = history([5, 5, 5, 5, 400, 5, 5, 5, 5])
    const big = { bytes: g.bytes[4]!, ops: g.ops[4]! }
    expect(sum(g.bytes)).toBeLessThan(big.bytes * 8 - 1) // all fit one run either way
    expect(remadeRuns(g, { bytes: big.bytes * 8, ops: HUGE })).toBe(1)
    expect(remadeRuns(g, { bytes: big.bytes * 8 - 1, ops: HUGE })).toBe(3)
    expect(remadeRuns(g, { bytes: HUGE, ops: big.ops * 8 })).toBe(1)
    expect(remadeRuns(g, { bytes: HUGE, ops: big.ops * 8 - 1 })).toBe(3)
  })
})

/** A hub on a virtual clock; `open` a writer or reader of `machine`, recording what it is told. */
const world = () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [ByBytes, ByOps], storage: new MemoryStorage(), runtime: rt }))
  const run = (ms: number) => settleWithTurns(rt, ms)
  const open = async <M extends typeof ByBytes | typeof ByOps>(machine: M, clientId: string) => {
    const client = await CanonClient.open({ transport: net.transport(clientId), runtime: rt, clientId, storage: new MemoryStorage() })
    const doc = await client.open(machine, "d")
    const rejected: string[] = []
    doc.on("rejected", (e) => rejected.push(e.rejection.message))
    return { doc, rejected }
  }
  return { net, run, open }
}

/** Updates of at most 6,000 bytes (so runs of at most that, an eighth 750). */
const ByBytes = defineMachine({ name: "by-bytes", version: 1, initial: () => ({}), crdt: { body: automergeText({ maxUpdateBytes: 6_000 }) }, commands: {} })
/** Updates of at most 2,000 ops (bytes: the default), so runs of at most that, an eighth 250. */
const ByOps = defineMachine({ name: "by-ops", version: 1, initial: () => ({}), crdt: { body: automergeText({ maxUpdateOps: 2_000 }) }, commands: {} })

/**
 * Offline, a paste the field refuses, then `edits` appends of `size` characters (each its own
 * merge, each under an eighth of the limit, together over it); back online, a fresh reader's
 * text and what the writer was told.
 */
const pasteThenEdits = async (machine: typeof ByBytes | typeof ByOps, paste: number, edits: number, size: number) => {
  const { net, run, open } = world()
  const { doc: w, rejected } = await open(machine, "w")
  await run(50)
  w.crdt.body.splice(0, 0, "abc")
  await run(500)
  expect(w.pendingCount).toBe(0)
  net.partition("w")
  net.drop("w")
  await run(50)
  w.crdt.body.splice(3, 0, "P".repeat(paste)) // refused: more than the field takes in one update
  await run(20)
  let expected = "abc"
  for (let k = 0; k < edits; k++) {
    const s = String.fromCharCode(97 + k).repeat(size)
    w.crdt.body.splice(w.crdt.body.text.length, 0, s)
    expected += s
    await run(20)
  }
  expect(w.pendingCount).toBe(edits + 1)
  net.heal("w")
  await run(6000)
  const { doc: r } = await open(machine, "r")
  await run(1000)
  return { writer: w.crdt.body.text, reader: r.crdt.body.text, expected, rejected, pending: w.pendingCount }
}

test("through a hub: edits behind a refused paste, over the field's update bytes together, land in runs the hub takes", async () => {
  // 11 x 600 characters (702 bytes a change, an eighth of 6,000 is 750): 6,600 together.
  const o = await pasteThenEdits(ByBytes, 7_000, 11, 600)
  expect(o.rejected.filter((m) => /crdt-too-large/.test(m))).toHaveLength(1) // the paste's only
  expect(o.reader === o.expected).toBe(true)
  expect(o.writer === o.reader).toBe(true)
  expect(o.pending).toBe(0)
}, 60_000)

test("through a hub: edits behind a refused paste, over the field's update ops together, land in runs the hub takes", async () => {
  // 12 x 200 characters (200 ops a change, an eighth of 2,000 is 250): 2,400 together, the
  // first ten exactly at the limit.
  const o = await pasteThenEdits(ByOps, 3_000, 12, 200)
  expect(o.rejected.filter((m) => /crdt-too-large/.test(m))).toHaveLength(1) // the paste's only
  expect(o.reader === o.expected).toBe(true)
  expect(o.writer === o.reader).toBe(true)
  expect(o.pending).toBe(0)
}, 60_000)
