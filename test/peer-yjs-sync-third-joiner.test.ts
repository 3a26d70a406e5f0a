/**
 * ATTACK REVIEW 3 (medium, honest convergence): on a BroadcastChannel, a replica that joins after
 * two members have synced never hands them the content it already had (offline edits, a
 * document loaded from local storage), and all three report synced = true.
 *
 * Mechanism: the joiner C sends step1; A and B answer with step2 (C gets their content). The
 * fix of commit 3b01c8b ("asks back whoever asks it") only asks back when the answering
 * session is itself unsynced (`if (!this.syncedValue) this.handshake()` in answer()); A and B
 * are synced, so nobody sends C a step1 and C's pre-existing content never leaves C. A
 * BroadcastChannel has no join event, so nothing else triggers it. Recovery comes only with
 * C's next edit (its clock is past what A and B have of C: a missing dependency, so they
 * re-handshake); a replica that joins and only reads (a tab that loaded offline edits from
 * local storage, then closes) leaves the others without them, while every session says
 * synced. With 2 members the first joiner is unsynced and asks back, which is why the
 * review-2 test passes; a member joining two synced ones is the case it misses.
 *
 * Measured on b72dad4: after 3 s, A = B = "ab" (synced true), C = "aoffline-cb" (synced true);
 * "offline-c" reaches A and B only if C edits again.
 */
import * as Y from "yjs"
import { YSyncSession, broadcastChannelLink } from "../adapters/peer/index.js"
import { sleep, until } from "./support/ws.js"

test("a third replica joining a BroadcastChannel with offline edits hands them to the two already synced", async () => {
  const name = `review3-ybc3-${Math.random()}`
  const docs: Y.Doc[] = []
  const sessions: YSyncSession[] = []
  const links: ReturnType<typeof broadcastChannelLink>[] = []
  const join = (text: string) => {
    const d = new Y.Doc()
    if (text) d.getText("t").insert(0, text)
    const l = broadcastChannelLink(name)
    docs.push(d); links.push(l); sessions.push(new YSyncSession(d, l))
  }
  try {
    join("a")
    await sleep(100)
    join("b")
    await sleep(300)
    expect(docs[0]!.getText("t").toString()).toBe(docs[1]!.getText("t").toString())
    join("offline-c")
    const same = () => docs.every((d) => d.getText("t").toString() === docs[0]!.getText("t").toString())
    const converged = await until(same, 3_000, 20)
    console.log(docs.map((d, i) => `${i}=${JSON.stringify(d.getText("t").toString())} synced=${sessions[i]!.synced}`).join(" "))
    expect(converged).toBe(true)
  } finally {
    sessions.forEach((s) => s.destroy()); links.forEach((l) => l.close())
  }
})
