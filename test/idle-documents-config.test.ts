/**
 * Idle documents, configuration: `idleDocuments` is merged by object spread
 * (hub.ts `idleLimits`, host.ts constructor), so a field present but undefined (or NaN), which
 * `Partial<IdleDocumentLimits>` accepts (exactOptionalPropertyTypes is off), replaces the
 * default, and idle-documents.ts `keep` compares with it: `size > undefined` and
 * `bytes > NaN` are false, so that bound is gone and kept documents grow with what readers touch.
 * (`{ count: Number(process.env.KEEP) || undefined }` is how an app ends up there.)
 */
import { hubWorld } from "./support/hub-wire.js"
import { DEFAULT_IDLE_DOCUMENTS } from "../core/authority/idle-documents.js"

test.each([
  ["count undefined", { count: undefined as unknown as number }],
  ["count NaN", { count: Number.NaN }],
  ["count and bytes undefined", { count: undefined as unknown as number, bytes: undefined as unknown as number }],
])("idleDocuments with %s keeps the default count bound", async (_name, idleDocuments) => {
  const w = hubWorld({ idleDocuments })
  const a = await w.peer()
  const n = DEFAULT_IDLE_DOCUMENTS.count + 16
  for (let i = 0; i < n; i++) {
    w.subscribe(a, `d${i}`)
    await w.run(5)
    a.send({ type: "unsubscribe", docId: `d${i}` })
    await w.run(5)
  }
  await w.run(1_000)
  expect(w.hub.stats().documents).toBeLessThanOrEqual(DEFAULT_IDLE_DOCUMENTS.count)
})
