/**
 * The CRDT routes answer a reader only from what is stored. The authority of a whole CRDT
 * document applies a batch to the document in memory, then writes it: in between, the
 * document holds updates a crash would lose. A reader answered from it then (a y-websocket
 * step1's step2, an automerge-repo newcomer's sync) would hold data the hub no longer has,
 * and, with writers bound to users, send another user's writes back as its own after the
 * restart and be refused `not-owner` for good. Answers wait for the write in flight.
 */
import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import * as Y from "yjs"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { automergeDocEngine, automergeRoute, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { GatedStorage } from "./support/gated-storage.js"
import { sleep, until } from "./support/ws.js"

const typed = (text: string, clientID: number): Uint8Array => {
  const d = new Y.Doc()
  d.clientID = clientID
  d.getText("t").insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

const textOf = (update: Uint8Array): string => {
  const d = new Y.Doc()
  Y.applyUpdate(d, update)
  return d.getText("t").toString()
}

/** Polls an async condition (every 50 ms, at most `ms`). */
const eventually = async (ok: () => Promise<boolean>, ms: number): Promise<boolean> => {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await ok()) return true
  return ok()
}

/** Lets queued work (microtasks and a few I/O turns) run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
}

test("an answer waits for the batch being written; it holds the batch once stored", async () => {
  const storage = new GatedStorage()
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false })
  const doc = await host.open<Y.Doc>("yjs", "d")
  await doc.submit([typed("stored ", 1)])

  storage.holdWrites()
  const writing = doc.submit([typed("held", 2)])
  await until(() => doc.doc.getText("t").toString().includes("held"), 5_000)

  let answered: string | undefined
  const answer = doc.answer("reader", (d) => Y.encodeStateAsUpdate(d)).then((u) => (answered = textOf(u)))
  await settle()
  expect(answered).toBeUndefined()
  expect(doc.storing).toBeDefined()

  storage.releaseWrites()
  await writing
  await answer
  expect(answered).toContain("held")
  expect(answered).toContain("stored")
  expect(doc.storing).toBeUndefined()
  await host.close()
})

test("an answer waiting for a write that fails is refused: the reader never gets what was lost", async () => {
  const storage = new GatedStorage()
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false })
  const doc = await host.open<Y.Doc>("yjs", "d")
  await doc.submit([typed("stored ", 1)])

  storage.holdWrites()
  const writing = doc.submit([typed("lost", 2)]).catch((e: { code?: string }) => e.code)
  await until(() => doc.doc.getText("t").toString().includes("lost"), 5_000)
  const answer = doc.answer("reader", (d) => textOf(Y.encodeStateAsUpdate(d))).then((t) => ({ text: t }), (e: { code?: string }) => ({ refused: e.code }))
  await settle()
  storage.failHeldWrites()
  expect(await writing).toBe("doc-unavailable")
  expect(await answer).toEqual({ refused: "doc-unavailable" })
  // Loaded again from storage: only what was stored.
  const again = await host.open<Y.Doc>("yjs", "d")
  expect(again.doc.getText("t").toString()).toBe("stored ")
  await host.close()
})

test("automerge-repo: a newcomer is not sent a change the hub has applied but not stored", async () => {
  const storage = new GatedStorage()
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)], { storage })
  const adapters: StoppableClientAdapter[] = []
  const repo = (token: string, peer: string) => {
    const adapter = new StoppableClientAdapter(`${url("/automerge")}?token=${token}`, 200)
    adapters.push(adapter)
    return new Repo({ network: [adapter], peerId: peer as never })
  }
  const writer = repo("writer", "peer-writer")
  let reader: Repo | undefined
  try {
    const handle = writer.create<{ text: string }>({ text: "stored" })
    const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", handle.documentId)
    const live = () => (doc.doc.doc as { text?: string }).text
    expect(await eventually(async () => live() === "stored" && doc.seq > 0 && doc.storing === undefined, 10_000)).toBe(true)

    storage.holdWrites()
    handle.change((d) => A.splice(d, ["text"], 6, 0, " and held"))
    expect(await until(() => live() === "stored and held", 10_000)).toBe(true)

    reader = repo("reader", "peer-reader")
    let seen: string | undefined
    const found = reader.find<{ text: string }>(handle.url).then((h) => {
      seen = h.doc()?.text
      h.on("change", () => (seen = h.doc()?.text))
      return h
    })
    // The reader's request reached the hub (its follow is subscribed): without the deferral its
    // answer would be on the way now, so the check below cannot pass for a reader still connecting.
    expect(await until(() => doc.subscriberCount === 2, 10_000)).toBe(true)
    // Long enough for the hub's answer and the reader's find to go round.
    await sleep(1_500)
    expect(seen).not.toBe("stored and held")

    storage.releaseWrites()
    await found
    expect(await until(() => seen === "stored and held", 10_000)).toBe(true)
  } finally {
    storage.releaseWrites()
    // The stock adapter asserts a socket on disconnect: not while one is still opening.
    await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === 1), 5_000)
    await writer.shutdown().catch(() => {})
    await reader?.shutdown().catch(() => {})
    await stop()
  }
}, 40_000)

test("automerge-repo: a document requested while its first changes are being written is served once they are stored, not told unavailable", async () => {
  const storage = new GatedStorage()
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)], { storage })
  const adapters: StoppableClientAdapter[] = []
  const repo = (token: string, peer: string) => {
    const adapter = new StoppableClientAdapter(`${url("/automerge")}?token=${token}`, 200)
    adapters.push(adapter)
    return new Repo({ network: [adapter], peerId: peer as never })
  }
  const writer = repo("writer", "peer-writer")
  let reader: Repo | undefined
  try {
    storage.holdWrites()
    // Made and shared at once: the hub has applied its first changes, their write held.
    const handle = writer.create<{ text: string }>({ text: "first" })
    const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", handle.documentId)
    expect(await until(() => (doc.doc.doc as { text?: string }).text === "first" && doc.seq === 0, 10_000)).toBe(true)

    reader = repo("reader", "peer-reader")
    let outcome: string | undefined
    const found = reader.find<{ text: string }>(handle.url).then((h) => (outcome = h.doc()?.text), (e: Error) => (outcome = `refused: ${e.message}`))
    expect(await until(() => doc.subscriberCount === 2, 10_000)).toBe(true)
    await sleep(300)
    expect(outcome).toBeUndefined()

    storage.releaseWrites()
    await found
    expect(outcome).toBe("first")
  } finally {
    storage.releaseWrites()
    await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === 1), 5_000)
    await writer.shutdown().catch(() => {})
    await reader?.shutdown().catch(() => {})
    await stop()
  }
}, 40_000)
