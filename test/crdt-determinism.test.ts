/**
 * CRDT fields stay in step with the hub, key by key, as the board demo uses them (a CardText
 * machine: one yText field, one small Yjs transaction per input event, apps/demo/web/
 * text-binding.ts): two replicas type into one text at once, one of them offline for part of
 * it, and after reconnecting neither reports a desync, both show the same text, and both
 * confirmed hashes equal the hub's.
 *
 * The replicas run twice: from the sources, and from a minified esbuild bundle made the way
 * the demo ships its browser code (apps/demo/build.ts), beside a hub running the sources. The
 * bundle is where the demo's desync came from: esbuild renames classes (Yjs's `Item` becomes
 * `_Item`, or one letter when minifying), and the Yjs engine recognised structs by
 * `constructor.name`, so a bundled replica refused every merge, incoming ones included, and
 * only a checkpoint's resync brought the other tab's keys in. Automerge fields are held to the
 * same schedule (their engine names no class).
 */
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"
import fc from "fast-check"
import * as Y from "yjs"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { seededRandom } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { crdtReason, yText, yjsEngine } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { settleWithTurns } from "./support/virtual-time.js"

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..")
const DOC = "card-text/board/c1"

/** The demo's CardText (apps/demo/card-text.ts). */
const CardText = defineMachine({ name: "card-text", version: 1, initial: () => ({}), commands: {}, crdt: { description: yText() } })
const AmCardText = defineMachine({ name: "am-card-text", version: 1, initial: () => ({}), commands: {}, crdt: { description: automergeText() } })

/** What a replica needs: the client and the machine, from the sources or from a bundle. */
interface Lib {
  readonly name: string
  readonly CanonClient: typeof CanonClient
  readonly CardText: typeof CardText
  readonly yjsEngine: typeof yjsEngine
  readonly Y: typeof Y
}

const SOURCES: Lib = { name: "sources", CanonClient, CardText, yjsEngine, Y }

/** The replica side built as the demo builds its browser code: esbuild, iife, minified. */
const bundled = async (): Promise<Lib> => {
  const result = await esbuild.build({
    stdin: {
      contents: `
        import * as Y from "yjs"
        import { CanonClient, defineMachine } from "./core/index.js"
        import { yText, yjsEngine } from "./adapters/yjs/index.js"
        export { CanonClient, Y, yjsEngine }
        export const CardText = defineMachine({ name: "card-text", version: 1, initial: () => ({}), commands: {}, crdt: { description: yText() } })`,
      resolveDir: ROOT,
      loader: "ts",
    },
    bundle: true,
    format: "iife",
    globalName: "CanonBundle",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    write: false,
    logLevel: "silent",
    define: { "process.env.NODE_ENV": '"production"' },
  })
  // The bundle has its own copy of Yjs, as a browser tab does; Yjs warns on a second copy in
  // one process (it cannot tell a tab's from an app mixing copies): not a finding here.
  const flag = "__ $YJS$ __"
  const g = globalThis as Record<string, unknown>
  const before = g[flag]
  delete g[flag]
  try {
    const lib = new Function(`${result.outputFiles[0]!.text}; return CanonBundle`)() as Omit<Lib, "name">
    return { name: "bundle", ...lib }
  } finally {
    g[flag] = before
  }
}

const world = (seed: number, machine: typeof CardText | typeof AmCardText) => {
  const rnd = seededRandom(seed)
  const rt = new VirtualRuntime(seed)
  // Through the wire codec (protocol 2), with jitter so that keys and entries cross.
  const net = new MemoryNetwork(rt, { latency: () => 1 + Math.floor(rnd() * 15), encode: true })
  // Frequent checkpoints: every chance to compare hashes is taken.
  const hub = new Hub({ machines: [machine], storage: new MemoryStorage(), runtime: rt, quietCheckpointMs: 30, checkpointEvery: 4 })
  net.listen(hub)
  return { rt, net, hub }
}
type World = ReturnType<typeof world>


/** One tab: a client, its description document, its caret, and the desyncs it reported. */
interface Tab {
  readonly name: string
  readonly client: CanonClient
  readonly text: () => string
  /** One input event: `del` characters before the caret removed, then `insert` typed there. */
  readonly input: (del: number, insert: string) => void
  caret: number
  readonly desyncs: unknown[]
  readonly confirmedHash: () => string
  readonly pending: () => number
}

const openYjs = async (w: World, lib: Lib, name: string): Promise<Tab> => {
  const client = await lib.CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name, storage: new MemoryStorage() })
  const doc = await client.open(lib.CardText, DOC)
  const tab: Tab = {
    name, client, caret: 0, desyncs: [],
    // Read the handle each time: a resync replaces it.
    text: () => doc.crdt.description.toString(),
    input: (del, insert) => {
      const t = doc.crdt.description
      const at = Math.min(tab.caret, t.length)
      const from = Math.max(0, at - del)
      // As text-binding.ts: one transaction per input event, the changed range only.
      t.doc!.transact(() => {
        if (at > from) t.delete(from, at - from)
        if (insert !== "") t.insert(from, insert)
      })
      tab.caret = from + insert.length
    },
    confirmedHash: () => doc.confirmedHash(),
    pending: () => doc.pendingCount,
  }
  doc.on("desync", (d) => tab.desyncs.push(d))
  return tab
}

const openAutomerge = async (w: World, name: string): Promise<Tab> => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name, storage: new MemoryStorage() })
  const doc = await client.open(AmCardText, DOC)
  const tab: Tab = {
    name, client, caret: 0, desyncs: [],
    text: () => doc.crdt.description.text,
    input: (del, insert) => {
      const h = doc.crdt.description
      const at = Math.min(tab.caret, h.text.length)
      const from = Math.max(0, at - del)
      h.splice(from, at - from, insert)
      tab.caret = from + insert.length
    },
    confirmedHash: () => doc.confirmedHash(),
    pending: () => doc.pendingCount,
  }
  doc.on("desync", (d) => tab.desyncs.push(d))
  return tab
}

/** Both tabs agree with each other, with a tab that opens now (the hub's text) and with the hub's hash. */
const expectInStep = async (tabs: Tab[], joiner: Tab, hubHash: string): Promise<void> => {
  for (const t of tabs) expect({ tab: t.name, desyncs: t.desyncs }).toEqual({ tab: t.name, desyncs: [] })
  for (const t of tabs) expect(t.pending()).toBe(0)
  expect(tabs.map((t) => t.text())).toEqual(tabs.map(() => joiner.text()))
  expect(tabs.map((t) => t.confirmedHash())).toEqual(tabs.map(() => hubHash))
  expect(joiner.confirmedHash()).toBe(hubHash)
}

/**
 * The browser test's schedule: A starts the text, then A types at its start while B types at
 * its end, key by key, with a backspace now and then; `offline` goes offline (as the demo's
 * `offline` event does: client.disconnect) for the middle part, then comes back.
 */
const demoSchedule = async (w: World, open: (name: string) => Promise<Tab>, offline: "a" | "b", keys: number): Promise<{ tabs: Tab[]; typed: string[] }> => {
  const a = await open("a")
  const b = await open("b")
  await settleWithTurns(w.rt, 100)
  a.input(0, "~~")
  await settleWithTurns(w.rt, 200)
  b.caret = b.text().length
  const rnd = seededRandom(keys)
  const typed: string[] = []
  const away = offline === "a" ? a : b
  for (let i = 0; i < keys; i++) {
    if (i === Math.floor(keys / 4)) away.client.disconnect()
    if (i === Math.floor((3 * keys) / 4)) away.client.connect()
    for (const [tab, letters] of [[a, "abcdefgh"], [b, "ABCDEFGH"]] as const) {
      if (i % 9 === 8) tab.input(1, "")
      else {
        const ch = letters[Math.floor(rnd() * letters.length)]!
        tab.input(0, ch)
        typed.push(ch)
      }
      // B types at the end of the text, whatever A added before it.
      if (tab === b) b.caret = Math.max(b.caret, b.text().length)
      await settleWithTurns(w.rt, 10 * Math.floor(rnd() * 3))
    }
  }
  away.client.connect()
  await settleWithTurns(w.rt, 3000)
  return { tabs: [a, b], typed }
}

let bundle: Lib

beforeAll(async () => {
  bundle = await bundled()
}, 60_000)

describe("the demo's description, key by key, one tab offline for part of it", () => {
  for (const libName of ["sources", "bundle"] as const) {
    for (const offline of ["a", "b"] as const) {
      test(`${libName} replicas, ${offline.toUpperCase()} offline: no desync, the same text and the hub's hash on both`, async () => {
        const lib = libName === "bundle" ? bundle : SOURCES
        const w = world(offline === "a" ? 11 : 12, CardText)
        const { tabs } = await demoSchedule(w, (n) => openYjs(w, lib, n), offline, 60)
        const joiner = await openYjs(w, SOURCES, "joiner")
        await settleWithTurns(w.rt, 500)
        const authority = await w.hub.doc(DOC, CardText)
        await expectInStep(tabs, joiner, authority.stateHash())
        // Both texts hold what was typed (backspaces removed some of it): sanity on the schedule.
        expect(joiner.text().length).toBeGreaterThan(60)
        for (const t of [...tabs, joiner]) await t.client.close()
      }, 60_000)
    }
  }

  test("Automerge text fields, A offline: no desync, the same text and the hub's hash on both", async () => {
    const w = world(13, AmCardText)
    const { tabs } = await demoSchedule(w, (n) => openAutomerge(w, n), "a", 40)
    const joiner = await openAutomerge(w, "joiner")
    await settleWithTurns(w.rt, 500)
    const authority = await w.hub.doc(DOC, AmCardText)
    await expectInStep(tabs, joiner, authority.stateHash())
    for (const t of [...tabs, joiner]) await t.client.close()
  }, 60_000)
})

describe("the Yjs engine in a bundle", () => {
  test("recognises Yjs structs whatever the bundler named their classes: honest updates merge, subdocuments and other roots are refused", () => {
    for (const lib of [SOURCES, bundle]) {
      const writer = new lib.Y.Doc()
      writer.clientID = 5
      const updates: Uint8Array[] = []
      writer.on("update", (u: Uint8Array) => updates.push(u))
      const t = writer.getText("t")
      t.insert(0, "hello")
      t.delete(1, 2)
      t.insert(3, "!")
      const field = lib.yjsEngine<Y.Text>("text").create()
      for (const u of updates) {
        const v = field.validate(u, { clientId: "w", trusted: false })
        expect({ lib: lib.name, ok: v.ok }).toEqual({ lib: lib.name, ok: true })
        if (v.ok) field.apply([v.update])
      }
      expect(field.handle.toString()).toBe("hlo!")

      const arrays = lib.yjsEngine<Y.Array<unknown>>("array").create()
      const sub = new lib.Y.Doc()
      sub.clientID = 6
      let subUpdate: Uint8Array | undefined
      sub.on("update", (u: Uint8Array) => (subUpdate = u))
      sub.getArray("a").insert(0, [new lib.Y.Doc()])
      const refused = arrays.validate(subUpdate!, { clientId: "s", trusted: true })
      expect({ lib: lib.name, reason: refused.ok ? "ok" : crdtReason(refused.rejection) }).toEqual({ lib: lib.name, reason: "crdt-invalid" })
      let otherRoot: Uint8Array | undefined
      const other = new lib.Y.Doc()
      other.on("update", (u: Uint8Array) => (otherRoot = u))
      other.getMap("x").set("k", 1)
      const refusedRoot = field.validate(otherRoot!, { clientId: "o", trusted: true })
      expect({ lib: lib.name, reason: refusedRoot.ok ? "ok" : crdtReason(refusedRoot.rejection) }).toEqual({ lib: lib.name, reason: "crdt-invalid" })
      field.destroy()
      arrays.destroy()
      writer.destroy()
      sub.destroy()
      other.destroy()
    }
  })
})

describe("random interleavings (property)", () => {
  /** One step: who acts, and what (key, backspace, caret move, offline, online, connection reset, wait). */
  const step = fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 1000 }))

  for (const libName of ["sources", "bundle"] as const) {
    test(`${libName} replicas: any interleaving of keys, backspaces, caret moves, offline spells and resets ends in step`, async () => {
      const lib = libName === "bundle" ? bundle : SOURCES
      await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), fc.array(step, { minLength: 20, maxLength: 80 }), async (seed, script) => {
        const w = world(seed, CardText)
        const tabs = [await openYjs(w, lib, "a"), await openYjs(w, lib, "b")]
        await settleWithTurns(w.rt, 100)
        for (const [who, what, n] of script) {
          const tab = tabs[who]!
          if (what < 8) tab.input(0, "abcdefghijklmnop"[(n + who * 8) % 16]!)
          else if (what < 10) tab.input(1, "")
          else if (what === 10) tab.caret = n % (tab.text().length + 1)
          else if (what === 11) tab.client.disconnect()
          else if (what === 12) tab.client.connect()
          else if (what === 13) w.net.drop(tab.name)
          else await settleWithTurns(w.rt, 10 * (n % 5))
        }
        for (const t of tabs) t.client.connect()
        await settleWithTurns(w.rt, 3000)
        const joiner = await openYjs(w, SOURCES, "joiner")
        await settleWithTurns(w.rt, 300)
        const authority = await w.hub.doc(DOC, CardText)
        await expectInStep(tabs, joiner, authority.stateHash())
        for (const t of [...tabs, joiner]) await t.client.close()
      }), { numRuns: 8, seed: 21 })
    }, 300_000)
  }
})
