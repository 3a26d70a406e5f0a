/**
 * Child process of test/crdt-work-in-flight-memory.test.ts: a CrdtDocHost with the
 * Automerge engine and the default work budget (virtual clock), and `K` anonymous connections
 * (each its own payer, as workPayer makes them) that each submit one ~135-byte document chunk
 * of `N` empty changes, all at once, as K sockets would. Prints "survived" and exits 0 if the
 * host took them all.
 */
import * as A from "@automerge/automerge"
import { MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { CrdtDocHost, workPayer } from "../../core/crdt-docs/index.js"
import type { CrdtDocAuthority, SubmitOutcome } from "../../core/crdt-docs/authority.js"
import { automergeDocEngine, type AutomergeBox } from "../../adapters/automerge-server/engine.js"

const K = Number(process.argv[2] ?? 16)
const N = Number(process.argv[3] ?? 50_000)
/** "sequential": the same uploads one after the other (the control: the memory suffices for that). */
const SEQUENTIAL = process.argv[4] === "sequential"

const main = async () => {
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime: new VirtualRuntime(1) })
  const docs = await Promise.all(Array.from({ length: K }, (_, i) => host.open<AutomergeBox>("automerge", `doc-${i}`)))
  let d = A.init<unknown>({ actor: "0a".repeat(16) })
  for (let c = 0; c < N; c++) d = A.emptyChange(d)
  const chunk = A.save(d)
  A.free(d)
  // One copy per socket (each frame is its own buffer).
  const submit = (doc: CrdtDocAuthority<AutomergeBox>) => doc.submit([chunk.slice()], undefined, undefined, workPayer("anonymous", {}))
  const outcomes = SEQUENTIAL ? [] as SubmitOutcome[] : await Promise.all(docs.map(submit))
  if (SEQUENTIAL) for (const doc of docs) outcomes.push(await submit(doc))
  const stored = outcomes.reduce((n, o) => n + o.stored, 0)
  console.log(`survived ${stored}/${K}`)
  await host.close()
}
main().catch((e) => {
  console.error(e)
  process.exit(2)
})
