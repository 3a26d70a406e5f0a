/**
 * The simulator's judgement of documents a hub keeps at their stored version because the
 * app's migration throws on their state (core/authority/held-version.ts; versioned.ts
 * `blockingTitle`), on hand-made worlds: each promise it claims to check is reported when
 * broken, and a world that keeps them passes.
 */
import type { Entry } from "../core/index.js"
import { MIGRATE, historyOf } from "../core/schema/versions.js"
import { checkWorld, type DocView, type HubLoad, type WorldView } from "./sim/checker.js"
import { MIGRATION_REFUSES, NEWEST, VTodoV3, blockingTitle, viewAt } from "./sim/versioned.js"

const DOC = "versioned"
const entry = (seq: number, name: string, args: unknown): Entry => ({ seq, time: seq, clientId: "c1", clientSeq: seq, name, args })
const marker = (seq: number, from: number): Entry => ({ seq, time: seq, clientId: "$hub", clientSeq: 0, name: MIGRATE, args: { from, to: NEWEST } })

/** v2 entries: an item titled t7 (v3's migration refuses it), then retitled t8 at seq 3. */
const V2_LOG = [entry(1, "add", { id: "a", title: "t7", priority: 0 }), entry(2, "toggle", { id: "a" }), entry(3, "retitle", { id: "a", title: "t8" })]
const REFUSED = `migration-failed: Document "versioned" stays at "vtodo" v2 on this hub ... The failure: ${MIGRATION_REFUSES} t7`

const world = (entries: Entry[], current: number, loads: HubLoad[], newest?: { seq: number; told: string[] }): WorldView => {
  const head = viewAt(DOC, entries, current, current, entries.length)
  const at = { seq: entries.length, hash: head.hash }
  const doc: DocView = {
    docId: DOC, machine: VTodoV3, replayable: true,
    authority: { ...at, state: head.state }, entries, reload: at, joiner: at, replicas: [],
    versioned: { current, loads, ...(newest !== undefined ? { newest } : {}) },
  }
  return {
    docs: [doc],
    ledger: { submitted: new Map(), confirmed: new Map(), rejected: new Map(), resent: new Map(), errors: [], desyncs: [] },
    hostile: undefined,
    replicaIds: new Set(),
    incarnations: [],
  }
}
const held = (seq: number): HubLoad => ({ seq, held: true, version: 2, message: "stays at v2" })

test("v3's migration refuses a state with an item titled a multiple of 7, and only such a state", () => {
  expect(blockingTitle(viewAt(DOC, V2_LOG, 2, 2, 2).state)).toBe("t7")
  expect(blockingTitle(viewAt(DOC, V2_LOG, 2, 2, 3).state)).toBeUndefined()
  expect(() => historyOf(VTodoV3)!.migrateState(viewAt(DOC, V2_LOG, 2, 2, 2).state, 2, 3, { seq: 2, time: 2, random: () => 0 })).toThrow(MIGRATION_REFUSES)
})

test("a document held while its state holds the title, then upgraded at a load without it: no failure", () => {
  const upgraded = [...V2_LOG, marker(4, 2)]
  expect(checkWorld(world(upgraded, 3, [held(2), { seq: 4, held: false, version: 3, message: "moved" }]))).toEqual([])
})

test("a document still held at the end, a fresh v3 app told migration-failed: no failure", () => {
  const log = V2_LOG.slice(0, 2)
  expect(checkWorld(world(log, 2, [held(2)], { seq: 0, told: [REFUSED] }))).toEqual([])
})

test("a load that kept the document at v2 though its state held no refused title is reported", () => {
  const failures = checkWorld(world(V2_LOG, 2, [held(2), held(3)], { seq: 0, told: [REFUSED] }))
  expect(failures).toEqual([expect.stringMatching(/^versions: the hub kept versioned at v2 on a load at seq 3, but no item there has a title v3's migration refuses/)])
})

test("a $migrate written after a state holding a refused title is reported", () => {
  const failures = checkWorld(world([...V2_LOG.slice(0, 2), marker(3, 2)], 3, []))
  expect(failures).toEqual([expect.stringMatching(/^versions: versioned has a \$migrate from v2 to v3 at seq 3, though its state there holds an item titled t7/)])
})

test("a document held at the end that a fresh v3 app could open, or was not told about, is reported", () => {
  const log = V2_LOG.slice(0, 2)
  expect(checkWorld(world(log, 2, [held(2)], { seq: 2, told: [] }))).toEqual([
    expect.stringMatching(/^versions: a fresh app of v3 opening versioned, held at v2, was not told migration-failed/),
    expect.stringMatching(/^versions: a fresh app of v3 has versioned, held at v2, at seq 2/),
  ])
})
