/**
 * ATTACK REVIEW 3 (medium-high, honest session kept unsynced and empty): on a link with
 * several peers (BroadcastChannel), any member can answer an honest session's step1 with a
 * bogus step2 first; the session takes it as THE answer, refuses it, and then treats the
 * honest members' real step2s as plain updates (1 MiB / 262,144-struct bound): a fresh
 * replica of a document over 1 MiB never receives it, and `synced` stays false (whenSynced()
 * never resolves) for as long as the malicious member keeps doing it.
 *
 * Mechanism: receive() sets `answer = msg.type === "step2" && this.awaitingStep2` and clears
 * awaitingStep2 for whatever step2 comes first, from anyone; apply() fails on the bogus one
 * (update-malformed: a 1-byte update), syncedValue stays false. The honest step2s arriving
 * next have answer = false: apply() bounds them by maxUpdateBytes (1 MiB) and refuses them
 * (update-too-large); had they fit, they would be applied but `synced` would still never be
 * set. The recovery paths re-run handshake() (a later update with a missing dependency, or a
 * peer's step1 when unsynced), and each new step1 is poisoned the same way.
 *
 * Measured on b72dad4: the malicious member sent 2 one-byte step2s; the fresh replica C ended
 * with 0 of 2,000,000 characters, synced = false, errors update-malformed x2 and
 * update-too-large x4 (A's and B's step2s, twice: A's later edit made C re-handshake).
 */
import * as Y from "yjs"
import { YSyncSession, broadcastChannelLink } from "../adapters/peer/index.js"
import { decodeYMessage, encodeStep2 } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"

test("a bogus step2 from one member does not keep a fresh replica from the document on a BroadcastChannel", async () => {
  const name = `review3-poison-${Math.random()}`
  // The malicious member (raw BroadcastChannel): answers new step1s with a 1-byte step2.
  const m = new BroadcastChannel(name)
  let armed = false
  let poisons = 0
  m.onmessage = (ev) => {
    const msg = decodeYMessage(ev.data as Uint8Array)
    if (armed && msg.type === "step1" && poisons < 20) {
      poisons++
      m.postMessage(encodeStep2(new Uint8Array([0])))
    }
  }
  const a = new Y.Doc()
  a.getText("t").insert(0, "x".repeat(2_000_000))
  const la = broadcastChannelLink(name)
  const sa = new YSyncSession(a, la)
  await sleep(100)
  const b = new Y.Doc()
  const lb = broadcastChannelLink(name)
  const sb = new YSyncSession(b, lb)
  const errors: string[] = []
  let c: Y.Doc | undefined
  let lc: ReturnType<typeof broadcastChannelLink> | undefined
  let sc: YSyncSession | undefined
  try {
    expect(await until(() => sa.synced && sb.synced && b.getText("t").length === 2_000_000, 3_000, 20)).toBe(true)
    armed = true
    c = new Y.Doc()
    lc = broadcastChannelLink(name)
    sc = new YSyncSession(c, lc, { onError: (e) => errors.push(e.code) })
    await sleep(1_500)
    a.getText("t").insert(0, "more")
    const got = await until(() => c!.getText("t").length === a.getText("t").length, 3_000, 20)
    console.log(`poisons ${poisons}; C has ${c.getText("t").length} of ${a.getText("t").length} characters, synced=${sc.synced}, errors ${errors.join(",")}`)
    expect(got).toBe(true)
    expect(sc.synced).toBe(true)
  } finally {
    sa.destroy(); sb.destroy(); sc?.destroy(); la.close(); lb.close(); lc?.close(); m.close()
  }
}, 20_000)
