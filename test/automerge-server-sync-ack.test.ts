/**
 * Review (attack on 40d475c): the automerge-repo endpoint now hands `receiveSyncMessage` the
 * peer's sync message re-encoded WITHOUT its changes (submit already applied them). That is
 * not the same message to Automerge's sync state: with `changes` empty and the message's heads
 * equal to the hub's heads (which they now are, submit having applied them), Automerge records
 * them as `lastSentHeads`, so the following `generateSyncMessage` finds nothing new to say and
 * the hub never answers a peer's changes. The peer's SyncState never learns the hub has them:
 * its `theirHeads`/`sharedHeads` for the hub stay behind.
 *
 * A stock automerge-repo `Repo` turns the hub's heads into `handle.getSyncInfo(storageId)`
 * (remote heads: what apps show as "saved to the server"). Expected (as before the change):
 * once the hub has stored a peer's edits, the peer's sync info for the hub's storage id
 * reaches the peer's own heads. Observed: the hub stores the edits but never acknowledges them.
 */
import { Repo } from "@automerge/automerge-repo"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { automergeDocEngine, automergeRoute, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { sleep, until } from "./support/ws.js"

const STORAGE_ID = "canon-hub-storage"

test("a stock Repo hears that the hub has its edits (remote heads for the hub's storage id reach its heads)", async () => {
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host, { storageId: STORAGE_ID })])
  const adapter = new StoppableClientAdapter(`${url("/automerge")}?token=writer`, 200)
  const repo = new Repo({ network: [adapter], peerId: "peer-ack" as never })
  try {
    const handle = repo.create<{ n: number }>({ n: 0 })
    await until(() => adapter.socket?.readyState === 1, 10_000)
    for (let i = 1; i <= 3; i++) {
      await sleep(300)
      handle.change((d) => { d.n = i })
    }
    const mine = () => JSON.stringify([...handle.heads()].sort())
    const hubHas = async () => {
      const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", handle.documentId)
      return (doc.doc.doc as { n?: number }).n === 3
    }
    // The hub stores the edits...
    let stored = false
    for (const end = Date.now() + 10_000; !stored && Date.now() < end; await sleep(100)) stored = await hubHas()
    expect(stored).toBe(true)
    // ...and says so: the peer's remote heads for the hub reach its own heads.
    const acked = await until(() => JSON.stringify([...(handle.getSyncInfo(STORAGE_ID as never)?.lastHeads ?? [])].sort()) === mine(), 5_000)
    expect({ acked, remote: handle.getSyncInfo(STORAGE_ID as never)?.lastHeads ?? null, heads: handle.heads() }).toEqual({ acked: true, remote: handle.heads(), heads: handle.heads() })
  } finally {
    await until(() => adapter.socket === undefined || adapter.socket.readyState === 1, 5_000)
    await repo.shutdown().catch(() => {})
    await stop()
  }
}, 40_000)
