/**
 * A stock Repo sends what the hub lacks as one document chunk (the whole document) once there
 * is enough of it: the hub's SyncState is new (a hub restarted, a document it never had) and
 * the peer typed meanwhile. The hub admitted a document chunk only if Automerge loaded as many
 * changes as `measureChunk` counted, and `changes` there is the largest change column: the
 * dependency column holds one entry per dependency, so a history with a merge (two writers
 * typing at once) counted more changes than it has. Every such chunk was refused as
 * `update-malformed`, its socket closed 4400; the stock client reconnected and sent it again,
 * for ever, and none of that writer's edits reached the hub again (the crdt chaos scenario,
 * seed 11: 249 and 533 markers never arrived after the last restart).
 */
import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { inflateRawSync } from "node:zlib"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { automergeDocEngine, automergeRoute, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { CHUNK_DOCUMENT, measureChunk } from "../adapters/automerge/validate.js"
import { changesOf } from "../adapters/automerge/admit.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { sleep, until } from "./support/ws.js"

type Note = { text: string }

/** Two writers typing at once, merging after every round: changes with two dependencies. */
const mergedHistory = (rounds: number): A.Doc<Note> => {
  let a = A.from<Note>({ text: "" })
  let b = A.clone(a)
  for (let i = 0; i < rounds; i++) {
    a = A.change(a, (d) => A.splice(d, ["text"], 0, 0, `<a${i}>`))
    b = A.change(b, (d) => A.splice(d, ["text"], 0, 0, `<b${i}>`))
    a = A.merge(a, A.clone(b))
    b = A.merge(b, A.clone(a))
  }
  return a
}

test("a document chunk whose history merges is measured at its changes, and all of them are taken", () => {
  const doc = mergedHistory(5)
  const all = A.getAllChanges(doc)
  expect(all.some((c) => A.decodeChange(c).deps.length > 1)).toBe(true)
  const saved = A.save(doc)
  const m = measureChunk(saved, { maxOps: 1 << 20, maxInflatedBytes: 1 << 24, inflate: (d) => inflateRawSync(d) })
  if (!m.ok) throw new Error(m.message)
  expect(m.type).toBe(CHUNK_DOCUMENT)
  expect(m.encodedChanges).toBe(all.length)
  // The bound on the work still counts every dependency.
  expect(m.changes).toBeGreaterThan(all.length)
  expect(changesOf(saved, m).map((c) => c.hash).sort()).toEqual(all.map((c) => A.decodeChange(c).hash).sort())
})

test("a stock Repo's document with merges, sent whole to a hub that lacks it, is stored (not refused, the socket not closed)", async () => {
  const refused: string[] = []
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)], {
    onEvent: (e) => {
      if (e.type === "crdt" && e.event.type === "refused") refused.push(`${e.event.code}: ${e.event.message}`)
    },
  })
  const adapter = new StoppableClientAdapter(`${url("/automerge")}?token=writer`, 200)
  const repo = new Repo({ network: [adapter], peerId: "merged-writer" as never })
  try {
    // Typed where the hub never saw it: the Repo's first sync sends it as one document chunk.
    const handle = repo.import<Note>(A.save(mergedHistory(10)))
    const mine = JSON.stringify(A.getHeads(handle.doc()).sort())
    const hubHeads = async (): Promise<string> => {
      const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", handle.documentId)
      try {
        return JSON.stringify(A.getHeads(doc.doc.doc).sort())
      } finally {
        hub.crdtDocs.release(doc)
      }
    }
    // Until the hub holds the Repo's heads or refuses something (bounded, not asserted on).
    let stored = false
    for (const end = Date.now() + 20_000; !stored && refused.length === 0 && Date.now() < end; await sleep(50)) stored = (await hubHeads()) === mine
    expect({ refused, stored }).toEqual({ refused: [], stored: true })
  } finally {
    await until(() => adapter.socket === undefined || adapter.socket.readyState === 1, 5_000)
    await repo.shutdown().catch(() => {})
    await stop()
  }
}, 40_000)
