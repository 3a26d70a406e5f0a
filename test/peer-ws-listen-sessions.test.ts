/**
 * ATTACK (medium): every connection to a listening replica leaks its sync session forever.
 *
 * Mechanism: the documented way to serve peers is
 *   listenWsLinks(addr, (link) => new YSyncSession(doc, link))      (test/support/peer-node.ts)
 *   listenWsLinks(addr, (link) => replica.attach(link))
 * A socketLink's close is final (the accepted socket never reopens), but nothing ever
 * destroys the session: YSyncSession only flips `synced` on close and keeps its
 * doc.on("update") handler; AutomergeReplica keeps the Attached entry (link, SyncState) in
 * `links`; socketLink keeps its listeners. A peer that connects and disconnects in a loop
 * grows the victim's memory without bound, and every later local edit runs one
 * encodeUpdate (a full copy of the update) per dead session, so a 1 MB paste after 10,000
 * reconnects copies 10 GB on the event loop. No connection cap, idle timeout or ping exists
 * either, so a half-open peer is never noticed.
 * Measured: 100 connect/close cycles -> 100 dead 'update' observers on the Y.Doc (a 200 KB edit
 * then takes ~33 ms, linear in dead sessions) and 100 dead
 * links in the AutomergeReplica (expected: about 0 once the peers are gone).
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { AutomergeReplica, YSyncSession, memoryLinkPair } from "../adapters/peer/index.js"
import { listenWsLinks } from "../adapters/peer/ws-listen.js"
import { sleep } from "./support/ws.js"
import { attach } from "./support/replicas.js"

const cycle = async (port: number, n: number) => {
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    ws.on("error", () => {})
    await new Promise<void>((r) => { ws.once("open", () => r()); ws.once("close", () => r()) })
    ws.close()
    await new Promise<void>((r) => ws.once("close", () => r()))
  }
  await sleep(100)
}

test("connections that come and go do not leave dead Yjs sessions on the document", async () => {
  const doc = new Y.Doc()
  doc.getText("t").insert(0, "hello")
  const listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, (link) => new YSyncSession(doc, link))
  try {
    const observers = () => (doc as unknown as { _observers: Map<string, Set<unknown>> })._observers.get("update")?.size ?? 0
    const before = observers()
    await cycle(listener.port, 100)
    const t0 = performance.now()
    doc.getText("t").insert(0, "x".repeat(200_000))
    console.log(`Yjs: 'update' observers ${before} -> ${observers()} after 100 closed connections; one 200 KB edit took ${(performance.now() - t0).toFixed(1)} ms`)
    expect(observers() - before).toBeLessThanOrEqual(5)
  } finally {
    await listener.close()
  }
})

test("connections that come and go do not leave dead links on an Automerge replica", async () => {
  const replica = new AutomergeReplica(A.from({ n: 1 }))
  const listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, (link) => { attach(replica, link) })
  try {
    await cycle(listener.port, 100)
    const links = (replica as unknown as { links: Set<unknown> }).links.size
    console.log(`Automerge: ${links} attached links after 100 closed connections`)
    expect(links).toBeLessThanOrEqual(5)
  } finally {
    await listener.close()
  }
})

test("a session made on a link that has already ended lets go of the document, and whenSynced says closed", async () => {
  const doc = new Y.Doc()
  const observers = () => (doc as unknown as { _observers: Map<string, Set<unknown>> })._observers.get("update")?.size ?? 0
  const [link] = memoryLinkPair()
  link.close()
  const session = new YSyncSession(doc, link)
  const synced = session.whenSynced()
  await sleep(10)
  expect(observers()).toBe(0)
  await expect(synced).rejects.toMatchObject({ code: "closed" })
})
