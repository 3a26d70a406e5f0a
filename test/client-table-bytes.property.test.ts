/**
 * A fuzzer for the exactly-once table's byte bounds (core/authority/client-table.ts
 * `OutcomeLimits`): clients record outcomes (seqs, short and long rejections), some
 * acknowledge and some never do, the table drains between commits. After every step:
 * - what the table says it holds is the sum of what it still answers exactly (`bytes` is true);
 * - each client's is within its own limit, or down to its newest run (never forgotten);
 * - every number is answered with what it was, or for one forgotten unacknowledged,
 *   "applied at seq <= X" (a rejection never becomes another one, nor a seq);
 * - what is kept is what a model of the rules keeps: nothing is forgotten before it must be.
 */
import fc from "fast-check"
import { ClientTable, MAX_RUN_OUTCOMES, outcomeBytes } from "../core/authority/client-table.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import type { StoredOutcome } from "../core/store/records.js"

const LIMITS = { window: 400, clientBytes: 2_500 }
const CLIENTS = ["a", "b", "c", "d"]

type Step =
  | { readonly kind: "record"; readonly client: number; readonly n: number; readonly text: number }
  | { readonly kind: "ack"; readonly client: number }
  | { readonly kind: "drain" }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("record" as const), client: fc.nat(CLIENTS.length - 1), n: fc.integer({ min: 1, max: 8 }), text: fc.oneof(fc.constant(-1), fc.nat(100)) }),
  fc.record({ kind: fc.constant("ack" as const), client: fc.nat(1) }),
  fc.constant({ kind: "drain" as const }),
)

test("the table's bytes are true and bounded, and it never answers a number with another outcome", async () => {
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 40, maxLength: 80 }), async (steps) => {
    const t = new ClientTable("d", new AuthorityStore(new MemoryStorage()), LIMITS)
    await t.load(CLIENTS)
    const sent = CLIENTS.map(() => [] as StoredOutcome[])
    const runs = CLIENTS.map(() => [] as number[])
    let seq = 0
    // The model: each client's kept runs (bytes), oldest first, and how many outcomes it has.
    const kept = CLIENTS.map(() => [] as Array<{ first: number; n: number; bytes: number }>)
    const sum = (c: number) => kept[c]!.reduce((n, r) => n + r.bytes, 0)
    const model = (c: number) => {
      const last = sent[c]!.length
      while (kept[c]!.length > 1 && (kept[c]![0]!.first + kept[c]![0]!.n - 1 <= last - LIMITS.window || sum(c) > LIMITS.clientBytes)) kept[c]!.shift()
    }
    for (const s of steps) {
      if (s.kind === "drain") t.drain()
      else if (s.kind === "ack") t.ack(CLIENTS[s.client]!, 1, sent[s.client]!.length)
      else {
        let run = 0
        let mine: { first: number; n: number; bytes: number } | undefined
        for (let i = 0; i < s.n; i++) {
          const o: StoredOutcome = s.text < 0 ? { hash: seq + 1, seq: ++seq } : { hash: 7 + i, rejection: { code: "rejected", message: "m".repeat(s.text) } }
          sent[s.client]!.push(o)
          run += outcomeBytes(o)
          // The batch's run, up to MAX_RUN_OUTCOMES (the next outcome starts another).
          if (mine === undefined || mine.n >= MAX_RUN_OUTCOMES) kept[s.client]!.push((mine = { first: sent[s.client]!.length, n: 0, bytes: 0 }))
          mine.n++
          mine.bytes += outcomeBytes(o)
          t.record(CLIENTS[s.client]!, 1, sent[s.client]!.length, o)
          model(s.client)
        }
        runs[s.client]!.push(run)
        // A commit between submits: the next record starts a run of its own.
        t.drain()
      }
      let held = 0
      for (let c = 0; c < CLIENTS.length; c++) {
        let mine = 0
        const acked = t.mark(CLIENTS[c]!).acked
        sent[c]!.forEach((o, i) => {
          const cs = i + 1
          const hash = o.hash
          const got = t.classify(CLIENTS[c]!, 1, cs, hash, seq)
          const out = got.kind === "duplicate" ? (got.outcome as { seq?: number; rejection?: unknown; seqAtMost?: number }) : undefined
          const exact = out !== undefined && out.seqAtMost === undefined && ("seq" in o ? out.seq === o.seq : JSON.stringify(out.rejection) === JSON.stringify(o.rejection))
          if (exact) mine += outcomeBytes(o)
          else if (cs > acked) {
            expect(got).toEqual({ kind: "duplicate", outcome: { clientSeq: cs, seqAtMost: expect.any(Number) } })
            // Forgotten as evicted, so the answer bounds what it could have been.
            expect(cs).toBeLessThanOrEqual(t.mark(CLIENTS[c]!).evictedThrough)
          }
          else expect(got.kind).toBe("conflict")
        })
        held += mine
        expect(mine).toBe(sum(c))
        // The newest outcome is always kept.
        if (sent[c]!.length > 0) expect(t.classify(CLIENTS[c]!, 1, sent[c]!.length, sent[c]!.at(-1)!.hash, seq).kind).toBe("duplicate")
        // Past its limit a client keeps its newest run alone.
        expect(mine).toBeLessThanOrEqual(Math.max(LIMITS.clientBytes, kept[c]!.at(-1)?.bytes ?? 0))
      }
      expect(t.bytes).toBe(held)
      // Clients hold their own only: what one sends never takes another's.
      expect(held).toBe(CLIENTS.reduce((n, _, i) => n + sum(i), 0))
    }
  }), { numRuns: Number(process.env.CLIENT_TABLE_RUNS ?? 25), seed: Number(process.env.CLIENT_TABLE_SEED ?? 1) })
})
