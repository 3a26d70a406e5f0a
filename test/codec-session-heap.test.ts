/**
 * A connection's codec session (core/protocol/codec-shared.ts CodecSession) holds at most
 * MAX_SESSION_BYTES of the hub's heap, whatever the length of the docIds it is sent: the
 * budget counts what a remembered string costs (`rememberedCost`: its characters as the
 * runtime keeps them plus its table entries), and decoded strings are flat (core/bytes.ts
 * `string`). Counting UTF-8 bytes let a session of 16-byte docIds hold 12.2 MiB, and one of
 * 31-byte docIds 41 MiB: a short string made a character at a time is kept by V8 as a chain
 * of pieces (attack review r15, finding 6).
 * Heap measured after a full collection; each session is filled on its own.
 */
import v8 from "node:v8"
import vm from "node:vm"
import { CodecSession, decodeClientMessage } from "../core/internal.js"
import { ENTRY_OVERHEAD, MAX_SESSION_BYTES, rememberedCost } from "../core/protocol/codec-shared.js"
import { ByteReader, ByteWriter } from "../core/bytes.js"
import { subscribeFrame } from "./support/hostile-frames.js"
import { Todo } from "./support/machines.js"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void
const heap = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** Fills a fresh session with distinct docIds of `bytes` bytes until it refuses one: the session, and how many it took. */
const fill = (bytes: number): { session: CodecSession; taken: number } => {
  const session = new CodecSession()
  let taken = 0
  for (let i = 0; i < 70_000; i++) {
    const docId = `${i.toString(36)}:`.padEnd(bytes, "x")
    const d = decodeClientMessage(subscribeFrame(docId, Todo), { version: 2, session })
    if (d.ok !== true) break
    taken++
  }
  return { session, taken }
}

test.each([1, 16, 31, 64, 200])("a session filled with %i-byte docIds holds no more heap than its budget", (bytes) => {
  const before = heap()
  const { session, taken } = fill(bytes)
  const held = heap() - before
  expect(taken).toBeGreaterThan(1000)
  // Within the budget, and what it counted is what the budget allows.
  expect(held).toBeLessThanOrEqual(MAX_SESSION_BYTES)
  expect(session.bytes).toBeLessThanOrEqual(MAX_SESSION_BYTES)
  expect(session.channelOf(`${(0).toString(36)}:`.padEnd(bytes, "x"))).toBe(1)
})

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
