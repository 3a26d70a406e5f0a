/**
 * Awareness states that are not JSON, or nest too deep (the attack of
 * .scratch/atk-interop/yjs-awareness-json.mts). The hub checked only an awareness message's
 * size, owner and rate, then kept and relayed its states as they came: a stock client parses
 * each with JSON.parse inside its socket's message handler, so `{not json` killed every Node
 * provider in the room (a browser lost the rest of that message), and valid JSON nested
 * 30,000 deep (60 KB) killed it on the next renewal (equalityDeep, JSON.stringify: RangeError).
 * Now such a message is refused whole and its sender closed (4400, presence-invalid); stock
 * providers in the room, and joiners after it, never see it; states at the depth bound and
 * removals (null) still travel.
 */
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { MAX_VALUE_DEPTH } from "../adapters/yjs/integrable.js"
import { decodeYMessage, decodeAwarenessUpdate, encodeAwareness, encodeAwarenessUpdate } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { rawYSocket, stockProvider } from "./support/yjs-sockets.js"

const nested = (levels: number): string => "[".repeat(levels) + "]".repeat(levels)

test("a non-JSON or too-deep awareness state closes its sender (4400); stock providers and joiners never get it; the depth bound and removals still travel", async () => {
  const events: Array<{ code: string; message: string }> = []
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)], {
    onEvent: (e) => {
      if (e.type === "crdt" && e.event.type === "refused") events.push({ code: e.event.code, message: e.event.message })
    },
  })
  const base = url("/yjs/aw-json")
  const sockets: WebSocket[] = []
  const providers: WebsocketProvider[] = []
  // What a provider's socket handler throws (the hub relaying a state it cannot read) ends here.
  const thrown: unknown[] = []
  const onThrow = (e: unknown) => thrown.push(e)
  process.on("uncaughtException", onThrow)
  const raw = (token: string) => rawYSocket(base, token, sockets)
  const provider = (token: string) => stockProvider(base, token, providers)
  /** The clientIDs with a (non-null) state in the awareness messages of `frames`. */
  const shown = (frames: ReadonlyArray<Uint8Array>): Set<number> => {
    const out = new Set<number>()
    for (const f of frames) {
      const m = decodeYMessage(f)
      if (m.type === "awareness") for (const e of decodeAwarenessUpdate(m.update, 1e6)) if (e.state !== "null") out.add(e.clientID)
    }
    return out
  }
  try {
    const ann = provider("ann")
    const bob = provider("bob")
    expect(await until(() => ann.p.synced && bob.p.synced, 10_000)).toBe(true)
    bob.p.awareness.setLocalState({ user: "bob", n: 1 })
    expect(await until(() => (ann.p.awareness.getStates().get(bob.p.doc.clientID) as { n?: number } | undefined)?.n === 1, 5_000)).toBe(true)

    const GOOD = 700_001
    const attacks: Array<{ who: string; entries: Array<{ clientID: number; clock: number; state: string }>; says: RegExp }> = [
      // A good state beside the bad one: the message is refused whole, the good one not kept either.
      { who: "mallory", entries: [{ clientID: GOOD, clock: 1, state: '{"user":"m"}' }, { clientID: 700_002, clock: 1, state: "{not json" }], says: /JSON/ },
      { who: "mallet", entries: [{ clientID: 700_003, clock: 1, state: nested(30_000) }], says: /deeper than/ },
      { who: "mina", entries: [{ clientID: 700_004, clock: 1, state: `{"a":${nested(MAX_VALUE_DEPTH)}}` }], says: /deeper than/ },
      { who: "moe", entries: [{ clientID: 700_005, clock: 1, state: "" }], says: /JSON/ },
    ]
    for (const a of attacks) {
      const s = await raw(a.who)
      s.ws.send(encodeAwareness(encodeAwarenessUpdate(a.entries)))
      expect(await until(() => s.closed() !== undefined, 5_000)).toBe(true)
      expect(s.closed()!.code).toBe(4400)
      expect(s.closed()!.reason).toMatch(a.says)
    }
    expect(events.filter((e) => e.code === "presence-invalid")).toHaveLength(attacks.length)

    // A state exactly at the bound (brackets in strings do not count) travels, and the stock provider holds it.
    const deepest = `{"s":"[[[{{{","a":${nested(MAX_VALUE_DEPTH - 1)}}`
    const ok = await raw("olive")
    ok.ws.send(encodeAwareness(encodeAwarenessUpdate([{ clientID: 700_006, clock: 1, state: deepest }])))
    expect(await until(() => ann.p.awareness.getStates().has(700_006), 5_000)).toBe(true)
    expect(ok.closed()).toBeUndefined()

    // The stock providers never failed, and still hear each other: a renewal and a removal.
    bob.p.awareness.setLocalState({ user: "bob", n: 2 })
    expect(await until(() => (ann.p.awareness.getStates().get(bob.p.doc.clientID) as { n?: number } | undefined)?.n === 2, 5_000)).toBe(true)
    bob.p.awareness.setLocalState(null)
    expect(await until(() => !ann.p.awareness.getStates().has(bob.p.doc.clientID), 5_000)).toBe(true)
    expect(thrown).toEqual([])
    expect(ann.closes() + bob.closes()).toBe(0)
    for (const id of [GOOD, 700_002, 700_003, 700_004, 700_005]) expect(ann.p.awareness.getStates().has(id)).toBe(false)

    // A joiner is sent the room's states: the good one, none of the refused.
    const joiner = await raw("june")
    expect(await until(() => shown(joiner.got).has(700_006), 5_000)).toBe(true)
    for (const id of [GOOD, 700_002, 700_003, 700_004, 700_005]) expect(shown(joiner.got).has(id)).toBe(false)
  } finally {
    for (const p of providers) {
      p.destroy()
      p.doc.destroy()
    }
    for (const ws of sockets) ws.terminate()
    await stop()
    process.off("uncaughtException", onThrow)
  }
})
