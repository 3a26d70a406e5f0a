/**
 * Closing a host lets go of the work budget's timers (core/crdt-docs/work-budget.ts): a
 * principal in debt has its next submit wait on a timer as long as the debt. That timer was
 * never cancelled, so a closed hub's process stayed alive for the rest of the debt (CI's run
 * did not exit: 147 s of debt from crdt-work-budget-routes' tiny budget). Now closing cancels
 * it, and the waiting submit ends with doc-unavailable instead of waiting for ever.
 */
import * as Y from "yjs"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtDocError } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"

const update = (clientID: number, text: string): Uint8Array => {
  const d = new Y.Doc()
  d.clientID = clientID
  d.getText("t").insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

test("a submit waiting off a debt when the host closes: no timer stays armed, and the submit ends", async () => {
  const runtime = new VirtualRuntime(5)
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 1, microsPerSecond: 1 } })
  const doc = await host.open<Y.Doc>("yjs", "room")
  await doc.submit([update(1, "first")], undefined, undefined, "mallory")
  // In debt for minutes of virtual time: this one waits.
  let ended: unknown
  void doc.submit([update(2, "second")], undefined, undefined, "mallory").then((o) => (ended = o), (e) => (ended = e))
  await runtime.run({ forMs: 10 })
  expect(ended).toBeUndefined()
  expect(runtime.armed).toBeGreaterThan(0)
  host.release(doc)
  await host.close()
  // Without moving the clock: the debt's timer must not be what ends the wait.
  for (let i = 0; i < 5 && ended === undefined; i++) await new Promise((r) => setImmediate(r))
  expect(ended).toBeInstanceOf(CrdtDocError)
  expect((ended as CrdtDocError).code).toBe("doc-unavailable")
  expect(runtime.armed).toBe(0)
})
