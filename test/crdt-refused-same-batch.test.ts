/**
 * A change refused for needing content that this replica's own later command carries, when
 * the hub answers both in one batch (simulator seed 296). The hub sends a batch's entries
 * before its results, so the replica has already confirmed the later command, and taken it
 * out of its pending list, when it reads the refusal. `ReplicaFields.refused` looked for what
 * the change needs only among pending commands, found nothing, and told the app `rejected`:
 * an edit the hub never refused for itself was lost. Now such a change goes again once, as
 * it was (the hub has what it needs by then).
 *
 * The scene, step by step on a link the test holds in both directions: a paste the full
 * document refuses (#1), then "b" typed inside it (#2, refused for needing the paste). The
 * replica reads #1's refusal and sends the paste's tombstone (#3); "c" is typed after "b"
 * (#4); then it reads #2's refusal and sends "b" again (#5). #3, #4 and #5 reach the hub in
 * one submit: the hub refuses #4 ("b" is not there yet) and takes #5.
 */
import { CanonClient, Hub, defineMachine, type ClientMessage, type ClientTransport } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { running, settleWithTurns } from "./support/virtual-time.js"
import { intercepted } from "./support/intercepted.js"

const YNote = defineMachine({ name: "ynote", version: 1, initial: () => ({}), crdt: { body: yText() }, commands: {} })

type Submit = Extract<ClientMessage, { type: "submit" }>

/**
 * A client link whose submits the test holds, as a slow network does: `send(n)` lets the first
 * `n` held commands through as one submit (a client sends its outbox in one or in several;
 * the hub takes either). What is held when the connection ends is gone with it.
 */
const heldSubmits = (inner: ClientTransport) => {
  let held: Submit[] = []
  let send: ((m: ClientMessage) => void) | undefined
  const transport = intercepted(inner, {
    // (A connection's first message is its hello: the real send is known before any submit.)
    send: (m, real) => {
      send = real
      if (m.type === "submit") held.push(m)
      else real(m)
    },
    closed: () => void (held = []),
  })
  return {
    transport,
    held: () => held.flatMap((m) => m.commands.map((c) => c.clientSeq)),
    send(n: number): void {
      const commands = held.flatMap((m) => m.commands)
      send!({ ...held[0]!, commands: commands.slice(0, n) })
      const rest = commands.slice(n)
      held = rest.length === 0 ? [] : [{ ...held[0]!, commands: rest }]
    },
  }
}

/** The text with each run of "a" as its length, to compare and print briefly. */
const runs = (text: string): string => text.replace(/a+/g, (m) => ` a×${m.length} `).trim().replace(/ +/g, " ")

test.each([false, true])("a change refused for needing what its own later command carries, answered in the same batch, goes again and lands (document reopened: %s)", async (reopen) => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [YNote], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: 100_000 } as never))
  const run = (ms: number) => settleWithTurns(rt, ms)
  const link = heldSubmits(net.transport("w"))
  const client = await running(rt, CanonClient.open({ transport: link.transport, runtime: rt, clientId: "w", storage: new MemoryStorage() }))
  const told: string[] = []
  const open = async () => {
    const doc = await running(rt, client.open(YNote, "d"))
    doc.on("rejected", (e) => told.push(`rejected #${e.clientSeq} ${e.rejection.code}`))
    doc.on("resent", (e) => told.push(`resent #${e.clientSeq}`))
    return doc
  }
  let w = await open()
  await run(50)
  w.crdt.body.insert(0, "a".repeat(20_000))
  await run(50)
  link.send(1)
  await run(500)
  expect(w.pendingCount).toBe(0)

  // Offline, each change is its own command: the paste (refused: the document is full) and
  // "b" right after it (refused for needing it).
  net.partition("w")
  net.drop("w")
  await run(50)
  w.crdt.body.insert(10_000, "P".repeat(90_000))
  await run(20)
  w.crdt.body.insert(100_000, "b") // right after the paste
  await run(20)
  const [paste, b] = w.pending.map((p) => p.clientSeq) as [number, number]
  expect(b).toBe(paste + 1)
  net.heal("w")
  await run(500)
  link.send(1) // the paste alone: refused, and its tombstone goes (held)
  await run(100)
  // Refused for what it is (the document is full), not for what it needs.
  expect(told).toEqual([`rejected #${paste} command-too-large`])
  expect(link.held()).toContain(b + 1)

  // Offline again before "b" reached the hub: "c" right after "b", so it needs "b". Typed by
  // the same Yjs writer, or (reopen) by a new one with the replica's memory of the paste's
  // refusal gone, as after a restart (simulator seed 296).
  net.partition("w")
  net.drop("w")
  await run(50)
  if (reopen) {
    await running(rt, w.close())
    w = await open()
  }
  w.crdt.body.insert(w.crdt.body.toString().indexOf("b") + 1, "c")
  await run(20)
  const c = b + 2
  expect(w.pending.map((p) => p.clientSeq)).toEqual([b, b + 1, c])
  net.heal("w")
  await run(500)
  link.send(1) // "b" alone: refused for needing the paste; it goes again after "c" (held)
  await run(100)
  expect(told).toEqual([`rejected #${paste} command-too-large`, `resent #${b}`])
  // (The refusal also has the replica send its outbox again: the copy goes after.)
  expect(link.held().slice(0, 3)).toEqual([b + 1, c, c + 1])

  link.send(3) // the tombstone, "c", and "b" again: one hub batch, which refuses "c" and takes "b"
  await run(100)
  if (link.held().length > 0) link.send(link.held().length)
  await run(3000)

  const reader = await (await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r" })).open(YNote, "d")
  await run(1000)
  expect(runs(reader.crdt.body.toString())).toBe("a×10000 bc a×10000")
  expect(runs(w.crdt.body.toString())).toBe("a×10000 bc a×10000")
  expect(w.pendingCount).toBe(0)
  // The paste was refused for itself; "b" and "c" only for what they needed, and both landed.
  expect(told.filter((t) => t.startsWith("rejected"))).toEqual([`rejected #${paste} command-too-large`])
  expect(told).toContain(`resent #${c}`)
}, 60_000)
