/**
 * What a replica sends again after a refusal (core/crdt/replica.ts `refused`) is stored with
 * the refusal, never after it. The hub refuses a paste into a full document and, with it,
 * every later change of the same writer (`crdt-missing-deps`); the replica takes the refused
 * commands out of its outbox and sends a tombstone and the later changes again (Yjs), or makes
 * them again (Automerge). Those must reach the disk in the same write that takes the refused
 * commands out, and changes waiting to go again one at a time must be on disk while they wait:
 * otherwise a process killed (or a document closed) in between loses edits the hub never
 * refused.
 */
import fc from "fast-check"
import { CanonClient, Hub, defineMachine, type BatchOp } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import * as K from "../core/store/keys.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

const YNote = defineMachine({ name: "ynote", version: 1, initial: () => ({}), crdt: { body: yText() }, commands: {} })
const ANote = defineMachine({ name: "anote", version: 1, initial: () => ({}), crdt: { body: automergeText() }, commands: {} })
type Note = typeof YNote | typeof ANote

const startsWith = (key: Uint8Array, prefix: Uint8Array): boolean => prefix.every((b, i) => key[i] === b)

/** A hub whose documents hold at most `cap` bytes, on a virtual clock. */
const world = (cap: number) => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [YNote, ANote], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: cap } as never))
  const run = (ms: number) => settleWithTurns(rt, ms)
  return { rt, net, run }
}

type Image = Array<readonly [Uint8Array, Uint8Array]>
/** What `disk` holds now, read synchronously (nothing written after this moment is in it). */
const imageOf = (disk: MemoryStorage): Image =>
  (disk as unknown as { map: { range(a: Uint8Array, b: Uint8Array, n: number, r: boolean): Image } }).map.range(new Uint8Array(0), new Uint8Array([0xff]), Infinity, false)
/** A new disk holding `image`: what the next process opens. */
const diskFrom = async (image: Image): Promise<MemoryStorage> => {
  const disk = new MemoryStorage()
  await disk.batch(image.map(([key, value]) => ({ type: "put", key, value })))
  return disk
}

/**
 * A writer's disk (writes take 5 ms) that can die: `armAfter(k)` takes an image of what is
 * durable right after the k-th write from then on that takes commands out of the outbox
 * (a confirmation or a refusal), as a process killed at that moment leaves it.
 */
const dyingDisk = (rt: VirtualRuntime, docId: string, failAt = 0) => {
  const outbox = K.replicaOutboxPrefix(docId)
  let armed = 0
  let image: Image | undefined
  let writes = 0
  const disk: MemoryStorage = new MemoryStorage({
    latency: { runtime: rt, ms: () => 5 },
    // `failAt` > 0: that write (counted from when the disk is armed) fails, as a disk can.
    failWrite: () => armed > 0 && ++writes === failAt,
    onDurable: (ops: ReadonlyArray<BatchOp>) => {
      if (armed === 0 || image !== undefined || !ops.some((op) => op.type === "del" && startsWith(op.key, outbox))) return
      if (--armed > 0) return
      image = imageOf(disk)
    },
  })
  return {
    disk,
    armAfter: (k: number) => void (armed = k),
    get died() { return image !== undefined },
    /** A new disk holding the image: what the next process opens. */
    revived: () => diskFrom(image!),
  }
}

/** The outbox and queue records a disk still holds for document "d" (none once everything is answered). */
const leftovers = async (disk: MemoryStorage): Promise<number> => {
  let n = 0
  for (const prefix of [K.replicaOutboxPrefix("d"), K.replicaQueuePrefix("d")]) n += (await disk.range({ gte: prefix, lt: K.prefixEnd(prefix) })).length
  return n
}

const textOf = (machine: Note, doc: { crdt: unknown }): string => {
  const body = (doc.crdt as { body: { toString(): string; text?: string } }).body
  return machine === YNote ? body.toString() : body.text!
}
const insert = (machine: Note, doc: { crdt: unknown }, at: number, s: string): void => {
  const body = (doc.crdt as { body: { insert(i: number, s: string): void } & { splice(i: number, n: number, s: string): void } }).body
  if (machine === YNote) body.insert(at, s)
  else body.splice(at, 0, s)
}

/**
 * 20,000 "a" confirmed, then offline a paste the hub refuses (the document of 100,000 bytes is
 * full) and `typed` edits `typed<i> ` at the start, which the hub refuses only for needing it.
 */
const pasteRefusedThenTyping = async (machine: Note, w: { crdt: unknown; readonly pendingCount: number }, { net, run }: ReturnType<typeof world>, typed: number) => {
  await run(50)
  insert(machine, w, 0, "a".repeat(20_000))
  await run(500)
  expect(w.pendingCount).toBe(0)
  net.partition("w")
  net.drop("w")
  await run(50)
  insert(machine, w, 10_000, "P".repeat(90_000)) // refused: the document is full
  await run(20)
  for (let i = 0; i < typed; i++) {
    insert(machine, w, 0, `typed${i} `)
    await run(20)
  }
}

/** A fresh reader's view of the document, once it has caught up. */
const readerOf = async <M extends Note>(machine: M, { rt, net, run }: ReturnType<typeof world>) => {
  const reader = await (await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r" })).open(machine, "d")
  await run(1000)
  return reader
}

/** Offline behind a refused paste: `typed` edits the hub only refuses for needing the paste. */
const refusedPasteThenTyping = async (machine: Note, kill: (w: ReturnType<typeof dyingDisk>) => void) => {
  const at = world(100_000)
  const { rt, net, run } = at
  const dying = dyingDisk(rt, "d")
  const client = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: dying.disk }))
  const w = await running(rt, client.open(machine, "d"))
  await pasteRefusedThenTyping(machine, w, at, 5)
  kill(dying)
  net.heal("w")
  for (let i = 0; i < 400 && !dying.died; i++) await run(5)
  expect(dying.died).toBe(true)
  // The process is gone: it sends nothing more. The next one opens what its disk held.
  net.partition("w")
  net.drop("w")
  const again = await (await CanonClient.open({ transport: net.transport("w2"), runtime: rt, storage: await dying.revived() })).open(machine, "d")
  await run(5000)
  return { again, reader: await readerOf(machine, at) }
}

describe.each([["Yjs", YNote], ["Automerge", ANote]] as const)("%s: a process killed right after storing a refusal", (_, machine) => {
  test("loses none of the edits the hub refused only for needing the refused paste", async () => {
    const { again, reader } = await refusedPasteThenTyping(machine, (d) => d.armAfter(1))
    const text = textOf(machine, reader)
    expect(text.startsWith("typed4 typed3 typed2 typed1 typed0 ")).toBe(true)
    expect(text).not.toContain("P")
    expect(textOf(machine, again)).toBe(text)
    expect(again.pendingCount).toBe(0)
  }, 60_000)
})

/**
 * Twenty offline pastes into a document with a little room: refused one after another, each
 * refusal sends a tombstone, and the changes refused again for needing the refused one wait
 * in a queue to go one at a time (O(n) submits). The queue is on disk while they wait.
 */
const queuedBehindRefusals = async (stop: (w: { close(): Promise<void> }, dying: ReturnType<typeof dyingDisk>, heard: number) => void) => {
  const n = 20
  const { rt, net, run } = world(60_000)
  const dying = dyingDisk(rt, "d")
  const client = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: dying.disk }))
  const w = await running(rt, client.open(YNote, "d"))
  await run(50)
  w.crdt.body.insert(0, "a".repeat(15_000))
  await run(500)
  net.partition("w")
  net.drop("w")
  await run(50)
  for (let i = 0; i < n; i++) {
    w.crdt.body.insert(0, String.fromCharCode(65 + i).repeat(6_000))
    await run(10)
  }
  w.crdt.body.insert(w.crdt.body.length, "end") // typed after them all: lands
  await run(10)
  let heard = 0
  w.on("rejected", () => stop(w, dying, ++heard))
  net.heal("w")
  return { rt, net, run, dying, client }
}

const expectOnlyWholePastesLost = (text: string) => {
  const runs = [...text.matchAll(/(.)\1*/g)].map((m) => `${m[1]}${m[0].length}`)
  expect(runs.slice(-4).join(" ")).toBe("a15000 e1 n1 d1")
  expect(runs.slice(0, -4).every((r) => /^[A-T]6000$/.test(r))).toBe(true)
}

describe("changes waiting to go again after refusals", () => {
  test.each([1, 2, 3, 5, 8, 12])("survive the document closed after %i rejections", async (k) => {
    let closing: Promise<void> | undefined
    const { run, net, rt, client, dying } = await queuedBehindRefusals((w, _, heard) => { if (heard === k) closing ??= w.close() })
    for (let i = 0; i < 400 && closing === undefined; i++) await run(5)
    expect(closing).toBeDefined()
    await running(rt, closing!)
    const again = await running(rt, client.open(YNote, "d"))
    await run(200_000)
    expect(await leftovers(dying.disk)).toBe(0)
    const reader = await readerOf(YNote, { rt, net, run })
    expectOnlyWholePastesLost(reader.crdt.body.toString())
    expect(again.crdt.body.toString()).toBe(reader.crdt.body.toString())
    expect(again.pendingCount).toBe(0)
  }, 120_000)

  test.each([2, 3, 4, 6, 8, 12])("survive the process killed after the refusal write %i", async (k) => {
    const { run, net, rt, dying } = await queuedBehindRefusals(() => {})
    dying.armAfter(k)
    for (let i = 0; i < 4000 && !dying.died; i++) await run(5)
    expect(dying.died).toBe(true)
    net.partition("w")
    net.drop("w")
    const disk = await dying.revived()
    const again = await (await CanonClient.open({ transport: net.transport("w2"), runtime: rt, storage: disk })).open(YNote, "d")
    await run(200_000)
    expect(await leftovers(disk)).toBe(0)
    const reader = await readerOf(YNote, { rt, net, run })
    expectOnlyWholePastesLost(reader.crdt.body.toString())
    expect(again.crdt.body.toString()).toBe(reader.crdt.body.toString())
    expect(again.pendingCount).toBe(0)
  }, 120_000)
})

test("a refusal whose write fails is stored whole by the retry: nothing is lost and nothing is left behind", async () => {
  const at = world(100_000)
  const { rt, net, run } = at
  const outbox = K.replicaOutboxPrefix("d")
  let failNext = false
  const disk = new MemoryStorage({ failWrite: (ops) => failNext && ops.some((op) => op.type === "del" && startsWith(op.key, outbox)) && !(failNext = false) })
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: disk })
  const w = await client.open(YNote, "d")
  const errors: string[] = []
  w.on("error", (e) => errors.push(e.code))
  await pasteRefusedThenTyping(YNote, w, at, 3)
  failNext = true
  net.heal("w")
  await run(5000)
  expect(failNext).toBe(false)
  expect(errors).toContain("storage-failed")
  const reader = await readerOf(YNote, at)
  expect(reader.crdt.body.toString()).toBe(`typed2 typed1 typed0 ${"a".repeat(20_000)}`)
  expect(w.crdt.body.toString()).toBe(reader.crdt.body.toString())
  expect(w.pendingCount).toBe(0)
  expect(await leftovers(disk)).toBe(0)
}, 60_000)

test("a refusal write that fails, then the state install it asked for, then a crash: the replacements are not left out", async () => {
  // The install (every refusal fetches the hub's state) is the next write; it must not take the
  // refused commands out of the outbox while what replaces them waits for the failed write's retry.
  const at = world(100_000)
  const { rt, net, run } = at
  const outbox = K.replicaOutboxPrefix("d")
  let failNext = false
  let failed = false
  let image: Image | undefined
  const disk: MemoryStorage = new MemoryStorage({
    latency: { runtime: rt, ms: () => 5 },
    failWrite: (ops) => failNext && ops.some((op) => op.type === "del" && startsWith(op.key, outbox)) && !(failNext = false) && (failed = true),
    onDurable: (ops) => {
      // The process dies right after the first write since the failure that takes a command out of the outbox.
      if (failed && image === undefined && ops.some((op) => op.type === "del" && startsWith(op.key, outbox))) image = imageOf(disk)
    },
  })
  const client = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: disk }))
  const w = await running(rt, client.open(YNote, "d"))
  await pasteRefusedThenTyping(YNote, w, at, 3)
  failNext = true
  net.heal("w")
  for (let i = 0; i < 400 && image === undefined; i++) await run(5)
  expect(failed).toBe(true)
  expect(image).toBeDefined()
  net.partition("w")
  net.drop("w")
  const next = await diskFrom(image!)
  const again = await (await CanonClient.open({ transport: net.transport("w2"), runtime: rt, storage: next })).open(YNote, "d")
  await run(5000)
  const reader = await readerOf(YNote, { rt, net, run })
  expect(reader.crdt.body.toString()).toBe(`typed2 typed1 typed0 ${"a".repeat(20_000)}`)
  expect(again.crdt.body.toString()).toBe(reader.crdt.body.toString())
  expect(await leftovers(next)).toBe(0)
}, 60_000)

test("a process killed between two answers of one refusal: the changes answered after the restart go again behind the stored tombstone", async () => {
  // 300 offline edits behind a refused paste are sent in two submit messages (256 commands at
  // most in one), so the hub answers them in two: the process dies after storing the first
  // answer (the paste's refusal, its tombstone, the first changes sent again). The second
  // answer comes again after the restart, when what those changes need is known only from
  // the outbox.
  const { rt, net, run } = world(100_000)
  const dying = dyingDisk(rt, "d")
  const client = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: dying.disk }))
  const w = await running(rt, client.open(YNote, "d"))
  await run(50)
  w.crdt.body.insert(0, "a".repeat(20_000))
  await run(500)
  net.partition("w")
  net.drop("w")
  await run(50)
  w.crdt.body.insert(10_000, "P".repeat(90_000)) // refused: the document is full
  await run(20)
  for (let i = 0; i < 300; i++) {
    w.crdt.body.insert(0, "t")
    await run(10)
  }
  expect(w.pendingCount).toBe(301)
  dying.armAfter(1)
  net.heal("w")
  for (let i = 0; i < 400 && !dying.died; i++) await run(5)
  expect(dying.died).toBe(true)
  net.partition("w")
  net.drop("w")
  const disk = await dying.revived()
  const again = await (await CanonClient.open({ transport: net.transport("w2"), runtime: rt, storage: disk })).open(YNote, "d")
  // The restored commands have no receipts: the app hears how each settled from its events.
  const restored = again.pending.map((p) => p.clientSeq)
  const told = new Map<number, string[]>()
  const tell = (how: string) => (e: { clientSeq: number }) => told.set(e.clientSeq, [...(told.get(e.clientSeq) ?? []), how])
  again.on("confirmed", tell("confirmed"))
  again.on("rejected", tell("rejected"))
  again.on("resent", tell("resent"))
  await run(5000)
  const reader = await readerOf(YNote, { rt, net, run })
  expect(reader.crdt.body.toString()).toBe(`${"t".repeat(300)}${"a".repeat(20_000)}`)
  expect(again.crdt.body.toString()).toBe(reader.crdt.body.toString())
  expect(await leftovers(disk)).toBe(0)
  // Each restored command was told once; those refused only for needing the paste, as resent (nothing lost).
  expect(restored.length).toBeGreaterThan(0)
  expect(restored.filter((cs) => told.get(cs)?.length !== 1)).toEqual([])
  expect(restored.some((cs) => told.get(cs)![0] === "resent")).toBe(true)
  expect(restored.filter((cs) => told.get(cs)![0] === "rejected")).toEqual([])
}, 60_000)

/**
 * The class, fuzzed: offline pastes (some refused because the document is full) with small
 * typed markers between them, a write that fails, and the process killed after a random write
 * that takes commands out of the outbox; the next process opens what the disk held. Every
 * typed marker lands unless the hub refused a command carrying it because the document is
 * full (near the cap, a re-sent marker can be), every paste lands whole or not at all, and no
 * outbox or queue record is left.
 */
test("fuzzed: killed at any refusal write, with a failed write, only whole refused pastes are lost", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 40_000, max: 90_000 }),
      fc.array(fc.record({ paste: fc.integer({ min: 3_000, max: 30_000 }), typed: fc.nat(3) }), { minLength: 2, maxLength: 12 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 12 }),
      async (cap, edits, killAfter, failAt) => {
        const { rt, net, run } = world(cap)
        const dying = dyingDisk(rt, "d", failAt)
        const client = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: dying.disk }))
        const w = await running(rt, client.open(YNote, "d"))
        // Which markers each command carries (read from its update's bytes), and those the hub refused as full.
        const carries = new Map<number, string[]>()
        const refusedFull = new Set<string>()
        const watch = (doc: typeof w) => {
          const submit = doc.submit.bind(doc) as (name: string, args: unknown) => { clientSeq: number }
          Object.defineProperty(doc, "submit", {
            value: (name: string, args: unknown) => {
              const receipt = submit(name, args)
              carries.set(receipt.clientSeq, Buffer.from(args as Uint8Array).toString("latin1").match(/<\d+\.\d+>/g) ?? [])
              return receipt
            },
          })
          doc.on("rejected", (e) => { if (/is full/.test(e.rejection.message)) for (const m of carries.get(e.clientSeq) ?? []) refusedFull.add(m) })
        }
        watch(w)
        await run(50)
        w.crdt.body.insert(0, "<base>")
        await run(300)
        net.partition("w")
        net.drop("w")
        await run(50)
        const markers: string[] = []
        const pastes: string[] = []
        // Time between edits: each is its own merge in the outbox.
        for (const [i, { paste, typed }] of edits.entries()) {
          const p = `[${i}${"p".repeat(paste)}]`
          pastes.push(p)
          w.crdt.body.insert(0, p)
          await run(10)
          for (let j = 0; j < typed; j++) {
            const m = `<${i}.${j}>`
            markers.push(m)
            w.crdt.body.insert(j % 2 === 0 ? 0 : w.crdt.body.length, m)
            await run(10)
          }
        }
        dying.armAfter(killAfter)
        net.heal("w")
        for (let i = 0; i < 2000 && !dying.died; i++) await run(5)
        let disk = dying.disk
        if (dying.died) {
          net.partition("w")
          net.drop("w")
          disk = await dying.revived()
          watch(await (await CanonClient.open({ transport: net.transport("w2"), runtime: rt, storage: disk })).open(YNote, "d"))
        }
        await run(60_000)
        const reader = await readerOf(YNote, { rt, net, run })
        const text = reader.crdt.body.toString()
        expect(markers.filter((m) => !text.includes(m) && !refusedFull.has(m))).toEqual([])
        for (const p of pastes) expect([p.slice(0, 4), text.split(p).length - 1]).toEqual([p.slice(0, 4), text.includes(p) ? 1 : 0])
        expect(text.replace(/\[\d+p*\]|<\d+\.\d+>|<base>/g, "")).toBe("")
        expect(await leftovers(disk)).toBe(0)
      },
    ),
    { numRuns: 25, seed: Number(process.env.DURABLE_FUZZ_SEED ?? 20261204), endOnFailure: true },
  )
}, 600_000)
