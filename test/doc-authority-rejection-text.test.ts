/**
 * A rejection's sentence is stored with the batch it came in (the client table's outcome) and
 * sent to the client. App code writes it, often quoting a cut of user input
 * (`ctx.reject(\`"${title.slice(0, 10)}…"\`)`) or throwing an error that quotes it (V8's
 * JSON.parse), and a cut can split an emoji: a lone surrogate, which has no UTF-8 form. Before
 * the fix the record could not be written, the whole commit failed with other clients'
 * commands in it, the document broke, and the client's outbox sent the command again on every
 * reconnect: one command made the document unservable. Sentences are made well-formed where
 * they are bounded (core/limits.ts `boundedMessage`).
 */
import fc from "fast-check"
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { wellFormed } from "../core/bytes.js"
import { codeUnitStrings } from "./support/code-units.js"

const Titles = defineMachine({
  name: "titles",
  version: 1,
  initial: () => ({ titles: [] as string[] }),
  commands: {
    add: {
      args: Schema.Struct({ title: Schema.String }),
      apply: (state, { title }, ctx) => {
        if (title.length > 10) ctx.reject(`Title "${title.slice(0, 10)}…" is too long.`)
        state.titles.push(title)
      },
    },
    addJson: {
      args: Schema.Struct({ json: Schema.String }),
      apply: (state, { json }) => { state.titles.push(String(JSON.parse(json))) },
    },
    // The reason is made of the code units given, whatever they are (arguments are well-formed; app code need not be).
    refuse: {
      args: Schema.Struct({ units: Schema.Array(Schema.Number) }),
      apply: (_state, { units }, ctx) => ctx.reject(String.fromCharCode(...units)),
    },
  },
})

const world = async (seed: number) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const broken: string[] = []
  const hub = new Hub({ machines: [Titles], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => { if (e.type === "doc-broken") broken.push(JSON.stringify(e)) } })
  net.listen(hub)
  const open = async (name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, machines: [Titles], storage: new MemoryStorage() })
    return { client, doc: await client.open(Titles, "d") }
  }
  return { rt, hub, broken, open }
}

const outcomeOf = (p: Promise<unknown>): { value: string } => {
  const o = { value: "pending" }
  p.then(() => { o.value = "applied" }, (e: { code?: string; message?: string }) => { o.value = `${e.code}: ${e.message}` })
  return o
}

test.each([
  ["a reason quoting a cut of the title", "add", { title: "123456789😀 and more" }, `rejected: Title "123456789\uFFFD…" is too long.`],
  ["JSON.parse's own error quoting the input", "addJson", { json: "[x" + "😀".repeat(30) }, "command-failed"],
] as const)("%s: the command is rejected with well-formed text, and the document stays served", async (_what, name, args, expected) => {
  const w = await world(7)
  const bystander = await w.open("b")
  const first = outcomeOf(bystander.doc.submit("add", { title: "ok" }))
  const attacker = await w.open("c")
  const hostile = outcomeOf(attacker.doc.submit(name, args as never))
  const later = outcomeOf(bystander.doc.submit("add", { title: "later" }))
  await w.rt.run({ forMs: 5000 })
  expect(w.broken).toEqual([])
  expect(first.value).toBe("applied")
  expect(later.value).toBe("applied")
  expect(hostile.value.startsWith(expected)).toBe(true)
  expect(wellFormed(hostile.value)).toBe(true)
  expect(attacker.doc.pendingCount).toBe(0)
  expect(bystander.doc.state.titles).toEqual(["ok", "later"])
  await attacker.client.close()
  await bystander.client.close()
  await w.hub.close()
})

test("property: any reason an app rejects with is stored and sent well-formed; the document never breaks", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(codeUnitStrings(1200), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 1e6 }), async (reasons, seed) => {
      const w = await world(seed)
      const c = await w.open("c")
      const outcomes = reasons.map((reason) => outcomeOf(c.doc.submit("refuse", { units: Array.from({ length: reason.length }, (_, i) => reason.charCodeAt(i)) })))
      const last = outcomeOf(c.doc.submit("add", { title: "after" }))
      await w.rt.run({ forMs: 5000 })
      expect(w.broken).toEqual([])
      for (const o of outcomes) {
        expect(o.value.startsWith("rejected: ")).toBe(true)
        expect(wellFormed(o.value)).toBe(true)
      }
      expect(last.value).toBe("applied")
      await c.client.close()
      await w.hub.close()
    }),
    { numRuns: 15 },
  )
})
