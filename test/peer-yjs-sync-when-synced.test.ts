/**
 * BUG (low): whenSynced() promises are never settled by destroy(), and pile up meanwhile.
 *
 * Mechanism: YSyncSession.whenSynced() adds a resolver to `waiters`, which only a step2
 * clears. destroy() unsubscribes from the link but neither resolves nor rejects the waiters,
 * so `await session.whenSynced()` (and openYDoc's `synced`, after `close()`) hangs forever
 * and holds whatever its continuation captured. A peer that never answers step1 (it only
 * has to stay connected) makes every whenSynced() call of the application add one more
 * waiter for the session's lifetime.
 * Measured: after destroy() / close() the promises are still pending 300 ms later (forever);
 * 10,000 whenSynced() calls against a silent peer -> 10,000 retained waiters.
 * Expected once fixed: destroy()/close() settle pending waiters (resolve or reject).
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { YSyncSession, memoryLinkPair, openYDoc } from "../adapters/peer/index.js"
import { deadPort, sleep } from "./support/ws.js"

const settled = async (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true, () => true), sleep(ms).then(() => false)])

test("destroy() settles a pending whenSynced()", async () => {
  const [la] = memoryLinkPair() // the other end never answers
  const session = new YSyncSession(new Y.Doc(), la)
  const waiting = session.whenSynced()
  // Callers waiting on a silent peer share one promise (before: one closure each, held for good).
  expect(session.whenSynced()).toBe(waiting)
  session.destroy()
  expect(await settled(waiting, 300)).toBe(true)
  await expect(waiting).rejects.toMatchObject({ code: "closed" })
})

test("openYDoc(...).close() settles `synced`", async () => {
  const port = await deadPort()
  const opened = openYDoc(`ws://127.0.0.1:${port}/yjs`, "d", { WebSocket })
  opened.close()
  expect(await settled(opened.synced, 300)).toBe(true)
})
