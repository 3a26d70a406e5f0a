/**
 * Attack (40d475c, 30ccead: asynchronous checks): since the Automerge engine's `check` decodes
 * in slices and returns a promise, the authority starts every submit's check at once, and the
 * checks of different submits (sockets, documents, principals) run side by side, each holding
 * its loaded document and the decoded changes (about 37 MB of JS heap per 50,000 changes,
 * measured here, kept until apply). 30ccead serialized only the checks of ONE submit. Nothing
 * bounds how many run at once across submits: the work budget charges only after a check
 * settles, and every anonymous connection is its own payer anyway. 64 sockets (the default
 * per address) each sending one ~150-byte chunk of 262,144 empty changes hold on the order of
 * 10 GB at once: the hub dies of heap exhaustion, taking every document with it. Before
 * 40d475c the checks were synchronous, so at most one decoded chunk existed at a time.
 *
 * Scaled down so it runs in seconds: a child process with a 96 MB heap, 12 anonymous payers
 * each submitting a 12,500-change chunk (to 12 documents) at once. The same 12 uploads one
 * after the other survive in the same heap (checked below as the control), so the memory is
 * enough for the work, only not for all of it at once. (Measured: the control and the bounded
 * uploads survive in 64 MB, two chunks of 12,500 fitting the default bound at once; unbounded,
 * the 12 die in 128 MB and survive only in 144 MB. It was 25,000-change chunks in 128 MB: 40%
 * more CPU, much of it collecting garbage.)
 *
 * Expected: the hub bounds the decoding it holds at once (e.g. heavy checks wait their turn
 * hub-wide, or by a memory budget), so concurrent uploads are slower, not fatal; the child
 * prints "survived 12/12" and exits 0. Observed: FATAL ERROR: Reached heap limit, exit 134.
 */
import { runWithHeap } from "./support/small-heap.js"

const run = (mode: "concurrent" | "sequential") => runWithHeap(96, "test/support/concurrent-decode-child.ts", ["12", "12500", mode])

test("control: twelve 12,500-change uploads one after the other fit a 96 MB heap", async () => {
  const r = await run("sequential")
  expect(r.out).toContain("survived 12/12")
  expect(r.code).toBe(0)
}, 120_000)

test("twelve anonymous sockets uploading a 12,500-change chunk at once do not exhaust a 96 MB heap", async () => {
  const r = await run("concurrent")
  expect(r.out.split("\n").find((l) => /survived|heap limit/.test(l))).toBe("survived 12/12")
  expect(r.code).toBe(0)
}, 120_000)
