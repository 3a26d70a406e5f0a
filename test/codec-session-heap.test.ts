/**
 * A connection's codec session (core/protocol/codec-shared.ts CodecSession) holds at most
 * MAX_SESSION_BYTES of the hub's heap, whatever the length of the docIds it is sent: the
 * budget counts what a remembered string costs (`rememberedCost`: its characters as the
 * runtime keeps them plus its table entries), and decoded strings are flat (core/bytes.ts
 * `string`). Counting UTF-8 bytes let a session of 16-byte docIds hold 12.2 MiB, and one of
 * 31-byte docIds 41 MiB: a short string made a character at a time is kept by V8 as a chain
 * of pieces (attack review r15, finding 6).
 * Heap measured after a full collection, in a fresh child process; each session is filled on its own.
 */
import { spawn } from "node:child_process"
import { ENTRY_OVERHEAD, MAX_SESSION_BYTES, rememberedCost } from "../core/protocol/codec-shared.js"
import { ByteReader, ByteWriter } from "../core/bytes.js"
import type { Filled } from "./support/session-heap-child.js"

const SIZES = [1, 16, 31, 64, 200]

/**
 * Each session is filled, and the heap measured, in a fresh child process
 * (test/support/session-heap-child.ts): forced full collections in a jest worker whose heap
 * earlier files grew took seconds each (the file took 46-57 s in CI, 5.7 s alone).
 */
const fillInChild = (sizes: ReadonlyArray<number>) => new Promise<Map<number, Filled>>((resolve, reject) => {
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", "test/support/session-heap-child.ts", ...sizes.map(String)], {
    cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: "" }, stdio: ["ignore", "pipe", "pipe"], timeout: 55_000, killSignal: "SIGKILL",
  })
  let out = ""
  let err = ""
  child.stdout.on("data", (d) => (out += String(d)))
  child.stderr.on("data", (d) => (err += String(d)))
  child.on("close", (code, signal) => {
    if (code !== 0) return reject(new Error(`session-heap-child exited ${code ?? signal}: ${err.slice(-2000)}`))
    const filled = out.trim().split("\n").map((l) => JSON.parse(l) as Filled)
    resolve(new Map(filled.map((f) => [f.bytes, f])))
  })
})

let filled: Promise<Map<number, Filled>>
beforeAll(() => {
  filled = fillInChild(SIZES)
  filled.catch(() => {}) // told by the first case that awaits it
})

test.each(SIZES)("a session filled with %i-byte docIds holds no more heap than its budget", async (bytes) => {
  const { held, taken, refusal, sessionBytes, firstChannel, budget } = (await filled).get(bytes)!
  expect(budget).toBe(MAX_SESSION_BYTES)
  expect(taken).toBeGreaterThan(1000)
  // The session's byte budget ended the fill (not the child's loop bound, nor its channel count).
  expect(refusal).toContain(`at most ${MAX_SESSION_BYTES} bytes`)
  // Within the budget, and what it counted is what the budget allows.
  expect(held).toBeLessThanOrEqual(MAX_SESSION_BYTES)
  expect(sessionBytes).toBeLessThanOrEqual(MAX_SESSION_BYTES)
  expect(firstChannel).toBe(1)
}, 60_000)

test("a remembered string costs its characters as kept (two bytes each past U+00FF) plus its entries, the same on both ends", () => {
  expect(rememberedCost("abc", 3)).toBe(ENTRY_OVERHEAD + 3)
  // "é" is two UTF-8 bytes; a string with "€" (three) is kept in UTF-16.
  expect(rememberedCost("é", 2)).toBe(ENTRY_OVERHEAD + 2)
  expect(rememberedCost("a€", 4)).toBe(ENTRY_OVERHEAD + 4)
  expect(rememberedCost("a".repeat(255) + "€", 258)).toBe(ENTRY_OVERHEAD + 512)
})

test("short strings decode as they were written (the flat path keeps every character)", () => {
  for (const s of ["", "a", "x".repeat(13), "0123456789abcdefghijklmnopqrstu", "ascii then é", "\u0000\u007f"]) {
    const w = new ByteWriter(64)
    w.string(s)
    expect(new ByteReader(w.finish()).string()).toBe(s)
  }
})
