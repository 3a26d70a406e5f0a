/**
 * A peer's step1 state vector is read by its count on arrival, and its entries only within
 * the document's clients plus 4,096 (the hub's bound, commit 8cae2d5): Y.decodeStateVector
 * builds a map of every entry, and a 7 MB vector of 1.5 million entries cost the session about
 * a second per answered step1 (twice when it then judged whether to ask back), charged to no
 * budget. Past the bound the step1 is answered as an empty vector (the whole document) and
 * its sender asked back. Shown by counts: a vector claiming 1.5 million entries in 9 bytes is
 * answered as the whole document instead of failing on the bytes it lacks.
 */
import * as Y from "yjs"
import * as enc from "lib0/encoding"
import { YSyncSession, memoryLinkPair } from "../adapters/peer/index.js"
import { decodeYMessage, encodeStep1, type YMessage } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"

/** A session on `doc` and the raw other end of its link, recording what the session sends. */
const rawPeer = (doc: Y.Doc) => {
  const [mine, theirs] = memoryLinkPair()
  const errors: string[] = []
  const session = new YSyncSession(doc, mine, { onError: (e) => errors.push(e.code) })
  const got: YMessage[] = []
  theirs.subscribe({ message: (bytes) => got.push(decodeYMessage(bytes)) })
  const of = (type: YMessage["type"]) => got.filter((m) => m.type === type)
  return { session, peer: theirs, errors, got, of, done: () => { session.destroy(); mine.close(); theirs.close() } }
}

const vector = (count: number, entries: ReadonlyArray<readonly [number, number]>): Uint8Array => {
  const e = enc.createEncoder()
  enc.writeVarUint(e, count)
  for (const [client, clock] of entries) { enc.writeVarUint(e, client); enc.writeVarUint(e, clock) }
  return enc.toUint8Array(e)
}

const docWith = (text: string): Y.Doc => {
  const doc = new Y.Doc()
  doc.getText("t").insert(0, text)
  return doc
}

/** The text a step2 holds, applied to an empty document. */
const textOf = (m: YMessage): string => {
  if (m.type !== "step2") throw new Error(`not a step2: ${m.type}`)
  const d = new Y.Doc()
  Y.applyUpdate(d, m.update)
  return d.getText("t").toString()
}

test("a step1 claiming 1.5 million clients in 9 bytes is answered as the whole document, its entries unread, and its sender asked back", async () => {
  const doc = docWith("hello")
  const p = rawPeer(doc)
  try {
    await sleep(5)
    expect(p.of("step1")).toHaveLength(1) // the session's own handshake
    const claim = vector(1_500_000, [[1, 1], [2, 2], [3, 3]])
    expect(claim.length).toBe(9) // 3 bytes of count, 6 of entries: nowhere near 1.5 million
    p.peer.send(encodeStep1(claim))
    expect(await until(() => p.of("step2").length === 1, 2_000, 5)).toBe(true)
    expect(textOf(p.of("step2")[0]!)).toBe("hello")
    // It claims thousands of clients this document lacks: asked back.
    expect(p.of("step1")).toHaveLength(2)
    expect(p.errors).toEqual([])
  } finally {
    p.done()
  }
})

test("past the bound a well-formed vector naming this document's own client is still answered whole; at it, by its entries", async () => {
  const doc = docWith("hello")
  const own: [number, number] = [doc.clientID, Y.getState(doc.store, doc.clientID)]
  const filler = (n: number) => Array.from({ length: n }, (_, i): [number, number] => [1_000_000 + i, 1])
  const clients = doc.store.clients.size
  const at = vector(clients + 4096, [own, ...filler(clients + 4095)])
  const past = vector(clients + 4097, [own, ...filler(clients + 4096)])

  const a = rawPeer(doc)
  try {
    await sleep(5)
    a.peer.send(encodeStep1(at))
    expect(await until(() => a.of("step2").length === 1, 2_000, 5)).toBe(true)
    // It has all this document holds: nothing to send.
    expect(textOf(a.of("step2")[0]!)).toBe("")
    a.peer.send(encodeStep1(past))
    expect(await until(() => a.of("step2").length === 2, 2_000, 5)).toBe(true)
    expect(textOf(a.of("step2")[1]!)).toBe("hello")
    expect(a.errors).toEqual([])
  } finally {
    a.done()
  }
})

test("a step1 whose count does not decode is refused on arrival and not answered", async () => {
  const p = rawPeer(docWith("hello"))
  try {
    await sleep(5)
    p.peer.send(encodeStep1(new Uint8Array([0x80]))) // a varint cut short
    await sleep(20)
    expect(p.errors).toEqual(["protocol-error"])
    expect(p.of("step2")).toHaveLength(0)
  } finally {
    p.done()
  }
})

test("over-bound step1s stay within the answer budget: three answered at once", async () => {
  const p = rawPeer(docWith("hello"))
  try {
    await sleep(5)
    for (let i = 0; i < 20; i++) p.peer.send(encodeStep1(vector(1_500_000, [])))
    await sleep(20)
    expect(p.of("step2")).toHaveLength(3)
  } finally {
    p.done()
  }
})

test("honest peers with offline edits on both sides, and one holding clients the other lacks, still sync", async () => {
  const a = docWith("a")
  const b = new Y.Doc()
  // b holds 50 writers' edits a has never seen (within the bound: read by their entries).
  for (let i = 0; i < 50; i++) {
    const w = new Y.Doc()
    w.getText("t").insert(0, String(i % 10))
    Y.applyUpdate(b, Y.encodeStateAsUpdate(w))
  }
  const [la, lb] = memoryLinkPair()
  const sa = new YSyncSession(a, la)
  const sb = new YSyncSession(b, lb)
  try {
    await Promise.all([sa.whenSynced(), sb.whenSynced()])
    expect(await until(() => a.getText("t").length === 51 && b.getText("t").length === 51, 2_000, 5)).toBe(true)
    expect(a.getText("t").toString()).toBe(b.getText("t").toString())
    a.getText("t").insert(0, "x")
    expect(await until(() => b.getText("t").toString() === a.getText("t").toString(), 2_000, 5)).toBe(true)
  } finally {
    sa.destroy(); sb.destroy(); la.close(); lb.close()
  }
})
