/**
 * Stored updates are not judged by the limits for a peer's updates. Both whole-document
 * engines re-checked the updates stored after a document's base against `maxUpdateBytes`
 * (Yjs) or `maxChangeBytes` and `maxChangeOps` (Automerge) when the document was loaded:
 * after an operator lowered them, older larger updates, which the hub had accepted and
 * acknowledged, were refused silently on load, missing from the live document, and gone for
 * good at the next compaction (the base is the live document). Stored updates now reach the
 * engine one way only, `restore` (core/crdt-docs/authority.ts, `read`), where no peer's limit
 * applies; one that does not load is `storage-corrupt`, never dropped.
 *
 * Here: updates stored with the default limits, the document reopened with lower ones: every
 * stored update is in the live document, and still after a compaction and another reload; a
 * peer's new update over the lower limit is still refused. And stored bytes that do not load
 * (garbage, a change whose dependency is not stored) make the load fail as storage-corrupt.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtDocStore, type CrdtDocAuthority, type CrdtDocEngine } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const host = (storage: MemoryStorage, engine: CrdtDocEngine<any>) =>
  new CrdtDocHost({ engines: [engine], storage, sync: false, compactAfterBytes: 1 << 30 })

/** Reopens `docId` on `storage` with `engine`, hands it to `see`, then closes the host. */
const reopened = async <D, T>(storage: MemoryStorage, engine: CrdtDocEngine<D>, kind: string, docId: string, see: (doc: CrdtDocAuthority<D>) => Promise<T>): Promise<T> => {
  const h = host(storage, engine)
  try {
    return await see(await h.open<D>(kind, docId))
  } finally {
    await h.close()
  }
}

/** Appends raw updates to a stored document (as a hub would have written them). */
const appendRaw = async (storage: MemoryStorage, kind: string, docId: string, seq: number, updates: Uint8Array[]) => {
  await new CrdtDocStore(storage, { sync: false }).append(docId, { kind, seq: seq + updates.length, baseSeq: 0 }, seq + 1, updates)
}

describe("Yjs: stored updates survive a lower maxUpdateBytes", () => {
  /** A client's updates: 6,000 characters typed offline (one update of about 6 KB), then three small edits. */
  const clientUpdates = (): { updates: Uint8Array[]; text: string } => {
    const client = new Y.Doc()
    const updates: Uint8Array[] = []
    client.on("update", (u: Uint8Array) => updates.push(u))
    const t = client.getText("t")
    t.insert(0, "offline ".repeat(750))
    for (const s of ["one", "two", "three"]) t.insert(t.length, ` ${s}`)
    return { updates, text: t.toString() }
  }

  test("every stored update is in the live document after reopening with a lower limit, and after a compaction", async () => {
    const storage = new MemoryStorage()
    const { updates, text } = clientUpdates()
    expect(updates[0]!.length).toBeGreaterThan(6_000)
    const first = host(storage, yjsDocEngine())
    const doc = await first.open<Y.Doc>("yjs", "notes")
    for (const u of updates) expect(await doc.submit([u])).toMatchObject({ stored: 1, rejected: [] })
    await first.close()

    const lower = () => yjsDocEngine({ maxUpdateBytes: 1024 })
    await reopened(storage, lower(), "yjs", "notes", async (again) => {
      expect(again.doc.getText("t").toString()).toBe(text)
      // Compacted: the base is the live document.
      await again.compact()
      expect(again.storedBytes.tail).toBe(0)
    })
    await reopened(storage, lower(), "yjs", "notes", async (again) => {
      expect(again.doc.getText("t").toString()).toBe(text)
      // A peer's update over the lower limit is still refused; a small one is taken.
      const peer = new Y.Doc()
      Y.applyUpdate(peer, Y.encodeStateAsUpdate(again.doc))
      const edits: Uint8Array[] = []
      peer.on("update", (u: Uint8Array) => edits.push(u))
      peer.getText("t").insert(0, "y".repeat(2_000))
      peer.getText("t").insert(0, "z")
      expect(await again.submit([edits[0]!])).toEqual({ stored: 0, known: 0, rejected: [expect.objectContaining({ code: "update-too-large", index: 0 })] })
      const small = new Y.Doc()
      Y.applyUpdate(small, Y.encodeStateAsUpdate(again.doc))
      const smallEdits: Uint8Array[] = []
      small.on("update", (u: Uint8Array) => smallEdits.push(u))
      small.getText("t").insert(0, "z")
      expect(await again.submit(smallEdits)).toEqual({ stored: 1, known: 0, rejected: [] })
      expect(again.doc.getText("t").toString()).toBe(`z${text}`)
    })
  })

  test("a stored update that does not decode, or whose dependencies are not stored, fails the load as storage-corrupt", async () => {
    const { updates } = clientUpdates()
    for (const bad of [[new Uint8Array([0xff, 0xff, 0xff])], [updates[2]!]]) {
      const storage = new MemoryStorage()
      await appendRaw(storage, "yjs", "notes", 0, bad)
      const h = host(storage, yjsDocEngine())
      await expect(h.open("yjs", "notes")).rejects.toMatchObject({ code: "storage-corrupt", message: expect.stringContaining('CRDT document "notes"') })
      await h.close()
    }
  })
})

describe("Automerge: stored changes survive a lower maxChangeBytes and maxChangeOps", () => {
  type Note = { text: string; n?: number }
  const actor = "aa".repeat(16)

  /** A peer's document (sent whole, as a Repo's first sync does), a large change, then small ones. */
  const peerUpdates = (): { updates: Uint8Array[]; doc: A.Doc<Note> } => {
    let doc = A.from<Note>({ text: "start" }, { actor })
    const updates: Uint8Array[] = []
    for (let i = 0; i < 20; i++) doc = A.change(doc, (d) => A.splice(d, ["text"], d.text.length, 0, ` ${i}`))
    updates.push(A.save(doc))
    doc = A.change(doc, (d) => A.splice(d, ["text"], d.text.length, 0, "offline ".repeat(750)))
    updates.push(A.getLastLocalChange(doc)!)
    for (let i = 0; i < 3; i++) {
      doc = A.change(doc, (d) => {
        d.n = i
      })
      updates.push(A.getLastLocalChange(doc)!)
    }
    return { updates, doc }
  }

  test("every stored change is in the live document after reopening with lower limits, and after a compaction", async () => {
    const storage = new MemoryStorage()
    const { updates, doc: peer } = peerUpdates()
    expect(updates[1]!.length).toBeGreaterThan(1_024)
    const first = host(storage, automergeDocEngine())
    const doc = await first.open<AutomergeBox>("automerge", "notes")
    for (const u of updates) expect(await doc.submit([u])).toMatchObject({ stored: 1, rejected: [] })
    await first.close()

    // 1 KiB and 100 ops: the document chunk (ops of 20 changes) and the large change are over both.
    const lower = () => automergeDocEngine({ maxChangeBytes: 1024, maxChangeOps: 100 })
    await reopened(storage, lower(), "automerge", "notes", async (again) => {
      expect(A.getHeads(again.doc.doc)).toEqual(A.getHeads(peer))
      expect((again.doc.doc as A.Doc<Note>).text).toBe(peer.text)
      await again.compact()
      expect(again.storedBytes.tail).toBe(0)
    })
    await reopened(storage, lower(), "automerge", "notes", async (again) => {
      expect(A.getHeads(again.doc.doc)).toEqual(A.getHeads(peer))
      // A peer's change over the lower limit is still refused; a small one is taken.
      const big = A.change(A.clone(peer, { actor: "bb".repeat(16) }), (d) => A.splice(d, ["text"], 0, 0, "y".repeat(2_000)))
      expect(await again.submit([A.getLastLocalChange(big)!])).toEqual({ stored: 0, known: 0, rejected: [expect.objectContaining({ code: "update-too-large", index: 0 })] })
      const small = A.change(A.clone(peer, { actor: "cc".repeat(16) }), (d) => {
        d.n = 9
      })
      expect(await again.submit([A.getLastLocalChange(small)!])).toEqual({ stored: 1, known: 0, rejected: [] })
      expect((again.doc.doc as A.Doc<Note>).n).toBe(9)
    })
  })

  test("stored bytes that do not load (garbage, garbage after a change, a change whose dependency is not stored) fail the load as storage-corrupt", async () => {
    const { updates } = peerUpdates()
    for (const bad of [[new Uint8Array([1, 2, 3])], [updates[0]!, new Uint8Array([...updates[1]!, 1, 2, 3])], [updates[0]!, updates[3]!]]) {
      const storage = new MemoryStorage()
      await appendRaw(storage, "automerge", "notes", 0, bad)
      const h = host(storage, automergeDocEngine())
      await expect(h.open("automerge", "notes")).rejects.toMatchObject({ code: "storage-corrupt", message: expect.stringContaining('CRDT document "notes"') })
      await h.close()
    }
  })
})
