/**
 * ATTACK (high; also hits honest users): a document that grows past the per-message bound
 * can never again be synced to a fresh replica, and the session says it is synced anyway.
 *
 * Mechanism: the whole-state answer (Yjs step2 = encodeStateAsUpdate(doc, theirSV); an
 * Automerge sync message carrying every change the peer lacks) is ONE message, but it is
 * checked against the per-update bound (YSyncSession.maxUpdateBytes, default 1 MiB;
 * AutomergeReplica.maxMessageBytes, default 4 MiB). Any writer can grow a document past that
 * with many small, individually valid updates (each far below the bound). From then on:
 * - Yjs: a fresh replica refuses the step2 ("update-too-large") but still sets synced and
 *   resolves whenSynced() (openYDoc's `synced`) with an EMPTY doc; every later live update
 *   depends on the missing structs and is held forever (or, once held bytes pass
 *   maxPendingBytes, re-runs the handshake and the peer re-sends the whole oversized state,
 *   refused again: a resync loop). It never converges.
 *   (Over ws-listen the 1 MiB maxPayload also closes the socket with 1009, which ws-link
 *   treats as transient and reconnects to at once.)
 * - Automerge: the first sync message with all changes is refused; the receiver resets its
 *   SyncState and the sender already counts them as sent: the replicas never converge.
 * Measured: a 1.5 MB Yjs text (30 inserts of 50 KB) never reaches a new replica; whenSynced
 * resolves with text length 0. An 8 MB Automerge doc (8 changes of 1 MB, ~6 MB
 * compressed: Automerge 3 sends a fresh peer the compressed document) never reaches one.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { AutomergeReplica, YSyncSession, memoryLinkPair } from "../adapters/peer/index.js"
import { randomBytes } from "node:crypto"
import { sleep, until } from "./support/ws.js"
import { attach } from "./support/replicas.js"

/** Sessions to end after each test, whatever happened. */
let cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

test("Yjs: a 1.5 MB document built from 50 KB edits reaches a fresh replica, and whenSynced does not lie", async () => {
  const big = new Y.Doc()
  for (let i = 0; i < 30; i++) big.getText("t").insert(big.getText("t").length, String(i % 10).repeat(50_000))
  const [l1, l2] = memoryLinkPair()
  const source = new YSyncSession(big, l1)
  const fresh = new Y.Doc()
  const errors: string[] = []
  const session = new YSyncSession(fresh, l2, { onError: (e) => errors.push(e.code) })
  cleanup.push(() => source.destroy(), () => session.destroy())
  await Promise.race([session.whenSynced(), sleep(2_000)])
  const lenAtSynced = fresh.getText("t").length
  // A live edit on the big side afterwards.
  big.getText("t").insert(0, "live|")
  const converged = await until(() => fresh.getText("t").length === big.getText("t").length, 15_000)
  console.log(`synced=${session.synced} with ${lenAtSynced} chars of ${big.getText("t").length}; errors ${JSON.stringify([...new Set(errors)])} x${errors.length}; resyncs ${session.resyncs}`)
  expect(session.synced && lenAtSynced === 0).toBe(false)
  expect(converged).toBe(true)
})

test("Automerge: an 8 MB document built from 1 MB changes reaches a fresh replica", async () => {
  let d = A.from({ parts: [] as unknown[] })
  // Incompressible content (Automerge deflates change columns).
  for (let i = 0; i < 8; i++) d = A.change(d, (x) => { x.parts.push(new A.RawString(randomBytes(768 * 1024).toString("base64"))) })
  const src = new AutomergeReplica(d)
  const errors: string[] = []
  const dst = new AutomergeReplica(A.init<{ parts: unknown[] }>(), { onError: (e) => errors.push(e.code) })
  const [l1, l2] = memoryLinkPair()
  attach(src, l1)
  attach(dst, l2)
  // A hang bound: the sync takes about 3.5 s alone, and longer beside the suite's other files on 2 cores.
  const converged = await until(() => (dst.doc.parts?.length ?? 0) === 8, 30_000)
  console.log(`Automerge: dst has ${dst.doc.parts?.length ?? 0} of 8 parts; errors ${JSON.stringify(errors)}`)
  expect(converged).toBe(true)
}, 60_000)
