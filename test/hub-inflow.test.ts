/**
 * The hub's input flow control on its own protocol (hub.ts `admit`): a writer sending
 * commands faster than the disk takes them is not read past `maxInflightBytes` of commands
 * waiting for their group commit, so the hub holds a bounded part of what it sent; every
 * command is still applied, once, in order. Real WebSocket server on 127.0.0.1; the disk is
 * slow on purpose (100 ms per batch).
 */
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { encodeClientMessage } from "../core/internal.js"
import { Todo } from "./support/machines.js"
import { RawClient } from "./support/hostile-raw.js"
import { DEFAULT_LIMITS } from "../core/authority/limits.js"

const FRAMES = 80
const COMMANDS_PER_FRAME = 4
const TITLE = 15_000
/** A quarter of the default bound, so the flood (some 2.3 times the bound) is quick to send. */
const MAX_INFLIGHT_BYTES = DEFAULT_LIMITS.maxInflightBytes / 4

test("a writer flooding submits is not read past the bound while its commands wait for the disk; all are applied once, in order", async () => {
  const storage = new MemoryStorage({ latency: { runtime: systemRuntime, ms: () => 100 } })
  const hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime, sync: false, snapshots: { minLogBytes: Infinity }, limits: { maxInflightBytes: MAX_INFLIGHT_BYTES } })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const raw = await RawClient.connect(`ws://127.0.0.1:${server.addresses()[0]!.port}/sync`)
  try {
    await raw.helloFresh()
    await raw.subscribe("flood", Todo)
    const hubEnd = server.sockets()[0]! as unknown as { _socket: { bytesRead: number } }
    const before = hubEnd._socket.bytesRead
    const sizes: number[] = []
    let clientSeq = 0
    for (let f = 0; f < FRAMES; f++) {
      const commands = Array.from({ length: COMMANDS_PER_FRAME }, () => {
        clientSeq++
        return { clientSeq, name: "add", args: { id: `i${clientSeq}`, title: String(clientSeq % 10).repeat(TITLE) } }
      })
      const frame = encodeClientMessage({ type: "submit", docId: "flood", commands, ackedClientSeq: 0 })
      sizes.push(frame.length)
      raw.sendFrame(frame)
    }
    // What the hub has read and not answered yet: a frame is done once its last command's outcome is back.
    const answered = (): number => {
      let last = 0
      for (const m of raw.received) if (m.type === "results" && m.docId === "flood") for (const o of m.outcomes) last = Math.max(last, o.clientSeq)
      return Math.floor(last / COMMANDS_PER_FRAME)
    }
    let held = 0
    const end = Date.now() + 60_000
    while (answered() < FRAMES && Date.now() < end) {
      held = Math.max(held, hubEnd._socket.bytesRead - before - sizes.slice(0, answered()).reduce((a, b) => a + b, 0))
      await new Promise((r) => setTimeout(r, 2))
    }
    expect(answered()).toBe(FRAMES)
    // The bound counts estimated bytes (at least the frame's), plus the frame that crossed it,
    // what the socket had read past it, and the batch being written.
    expect(held).toBeLessThanOrEqual(MAX_INFLIGHT_BYTES + 4 * sizes[0]!)
    expect(held).toBeGreaterThan(sizes[0]!)
    const outcomes = raw.received.flatMap((m) => (m.type === "results" && m.docId === "flood" ? m.outcomes : []))
    expect(outcomes.map((o) => o.clientSeq)).toEqual(Array.from({ length: FRAMES * COMMANDS_PER_FRAME }, (_, i) => i + 1))
    expect(outcomes.every((o) => "seq" in o && o.seq === o.clientSeq)).toBe(true)
    expect((await hub.doc("flood", Todo)).headSeq).toBe(FRAMES * COMMANDS_PER_FRAME)
  } finally {
    await raw.close()
    await server.close()
    await hub.close()
  }
}, 90_000)
