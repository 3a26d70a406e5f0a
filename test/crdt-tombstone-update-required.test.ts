/**
 * A refused change's tombstone, and the changes refused only for needing it, that cannot be
 * submitted at the moment of the refusal are kept and go once they can (core/crdt/replica.ts
 * `refused`, `#next`). The hub said `update-required` on the connection that brought the
 * refusal (its document compacted into a newer version's state), which makes the document
 * read-only for that connection: `doc.submit` refuses before queuing. The replica submitted
 * the tombstone and the change to send again anyway, was refused, told the app "could not be
 * sent again", and kept neither (the refused commands left the outbox in the same write): the
 * updated app (or the next connection) sent its later changes, which the hub refused for
 * needing the tombstone, and they were lost (simulator seed 30 with `--cpu-hog 1`: an app at
 * v1 pasted past a lowered field limit, was told to update, and lost what it typed next).
 * They now wait in the replica's queue, stored with the refusal, and go on the next
 * connection or when the document is opened again.
 */
import { CanonClient, Hub, defineMachine, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { running, settleWithTurns } from "./support/virtual-time.js"
import { intercepted } from "./support/intercepted.js"

const YNote = defineMachine({ name: "ynote", version: 1, initial: () => ({}), crdt: { body: yText() }, commands: {} })

/** The text with each run of "a" as its length, to compare and print briefly. */
const runs = (text: string): string => text.replace(/a+/g, (m) => ` a×${m.length} `).trim().replace(/ +/g, " ")

const hasRejection = (m: ServerMessage): boolean => m.type === "results" && m.outcomes.some((o) => "rejection" in o)

test.each(["the next connection", "the document opened again"])("a tombstone and a resend refused before queuing (update-required) go on %s", async (how) => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [YNote], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: 100_000 } as never))
  const run = (ms: number) => settleWithTurns(rt, ms)
  // Before the first answer that refuses a command, the hub says `update-required` on that
  // connection (as a hub does for an app behind a compaction into a newer version's state).
  let armed = false
  let told = 0
  const transport = intercepted(net.transport("w"), {
    message: (m, deliver) => {
      if (armed && hasRejection(m)) {
        armed = false
        told++
        deliver({ type: "error", docId: "d", code: "update-required", seq: 1, message: "Update the app." })
      }
      deliver(m)
    },
  })
  const storage = new MemoryStorage()
  const client = await running(rt, CanonClient.open({ transport, runtime: rt, clientId: "w", storage }))
  const events: string[] = []
  const open = async () => {
    const doc = await running(rt, client.open(YNote, "d"))
    doc.on("rejected", (e) => events.push(`rejected #${e.clientSeq} ${e.rejection.code}`))
    doc.on("error", (e) => events.push(`error ${e.code}`))
    return doc
  }
  let w = await open()
  await run(50)
  w.crdt.body.insert(0, "a".repeat(20_000))
  await run(500)
  expect(w.pendingCount).toBe(0)

  // Offline, each change is its own command: a paste the full document refuses, and "b"
  // right after it, which the hub refuses only for needing the paste.
  net.partition("w")
  net.drop("w")
  await run(50)
  w.crdt.body.insert(10_000, "P".repeat(90_000))
  await run(20)
  w.crdt.body.insert(100_000, "b")
  await run(20)
  const [paste] = w.pending.map((p) => p.clientSeq) as [number, number]
  armed = true
  net.heal("w")
  await run(1000)
  expect(told).toBe(1)
  expect(w.updateRequired).toBeDefined()
  // Only the paste is refused for itself.
  expect(events.filter((e) => e.startsWith("rejected"))).toEqual([`rejected #${paste} command-too-large`])

  if (how === "the next connection") {
    net.partition("w")
    net.drop("w")
    await run(50)
    net.heal("w")
  } else {
    // The app updated: it closes the document and opens it again from its storage.
    await running(rt, w.close())
    w = await open()
  }
  await run(3000)
  expect(w.updateRequired).toBeUndefined()

  const reader = await (await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r" })).open(YNote, "d")
  await run(1000)
  expect(runs(reader.crdt.body.toString())).toBe("a×10000 b a×10000")
  expect(runs(w.crdt.body.toString())).toBe("a×10000 b a×10000")
  expect(w.pendingCount).toBe(0)
  expect(events.filter((e) => e.startsWith("rejected"))).toEqual([`rejected #${paste} command-too-large`])
}, 60_000)

test("a change waiting in the queue that the replica refuses for good is let go and told once, not tried at every change", async () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [YNote], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: 100_000 } as never))
  const run = (ms: number) => settleWithTurns(rt, ms)
  let armed = false
  const transport = intercepted(net.transport("w"), {
    message: (m, deliver) => {
      if (armed && hasRejection(m)) {
        armed = false
        deliver({ type: "error", docId: "d", code: "update-required", seq: 1, message: "Update the app." })
      }
      deliver(m)
    },
  })
  const storage = new MemoryStorage()
  const client = await running(rt, CanonClient.open({ transport, runtime: rt, clientId: "w", storage }))
  const w = await running(rt, client.open(YNote, "d"))
  await run(50)
  w.crdt.body.insert(0, "a".repeat(20_000))
  await run(500)
  net.partition("w")
  net.drop("w")
  await run(50)
  w.crdt.body.insert(10_000, "P".repeat(90_000)) // refused: the document is full
  await run(20)
  w.crdt.body.insert(100_000, "B".repeat(3_000)) // refused for needing it; waits to go again
  await run(20)
  armed = true
  net.heal("w")
  await run(1000)
  expect(w.updateRequired).toBeDefined()
  await running(rt, w.close())
  await running(rt, client.close())

  // Opened again by an app whose commands are smaller: the tombstone goes; "B" cannot.
  const errors: string[] = []
  const opening = (await running(rt, CanonClient.open({ transport, runtime: rt, clientId: "w", storage, maxCommandBytes: 2_000 }))).open(YNote, "d")
  // (Heard from the open on: the queue goes as soon as the document is connected.)
  void opening.then((d) => d.on("error", (e) => errors.push(`${e.code} ${/could not be sent again/.test(e.message)}`)))
  const again = await running(rt, opening)
  await run(3000)
  // Later edits (a new Yjs writer: it needs nothing of the old one's) land, and the change let go is not tried again.
  for (const s of ["c", "d"]) {
    again.crdt.body.insert(0, s)
    await run(500)
  }
  expect(errors).toEqual(["command-too-large true"])
  const reader = await (await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r" })).open(YNote, "d")
  await run(1000)
  expect(runs(reader.crdt.body.toString())).toBe("dc a×20000")
  expect(runs(again.crdt.body.toString())).toBe("dc a×20000")
  expect(again.pendingCount).toBe(0)
}, 60_000)
