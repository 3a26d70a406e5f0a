/**
 * The shared conformance suite of the PeerLink port (core/crdt-docs/peer-link.ts): every link
 * runs it through `peerLinkConformance(name, harness)` from test/peer-link-conformance.test.ts.
 *
 * It holds a link to what the sync sessions (adapters/peer) rely on: bytes arrive intact and
 * in order both ways, never inside `send`; an unsubscribed listener hears nothing more;
 * `close()` tells each listener `close` (if the link was open) and then `end`, once, drops
 * them, and leaves `send` a harmless no-op; closing twice is harmless; a listener added
 * after the end hears `end` alone.
 */
import type { PeerLink, PeerLinkListener } from "../core/crdt-docs/peer-link.js"
import { until } from "./support/ws.js"

export interface PeerLinkHarness {
  /** Two links connected to each other, both open. */
  pair(): Promise<readonly [PeerLink, PeerLink]>
  /** Closes whatever the harness opened. Called after each test. */
  dispose(): Promise<void>
}

const recorder = () => {
  const got: Uint8Array[] = []
  const events: string[] = []
  const listener: PeerLinkListener = {
    message: (bytes) => got.push(bytes.slice()),
    open: () => events.push("open"),
    close: () => events.push("close"),
    end: () => events.push("end"),
  }
  return { got, events, listener }
}

const bytesOf = (i: number): Uint8Array => {
  const out = new Uint8Array(1 + ((i * 977) % 3000))
  for (let k = 0; k < out.length; k++) out[k] = (i + k) & 0xff
  return out
}

export const peerLinkConformance = (name: string, harness: () => PeerLinkHarness): void => {
  describe(`PeerLink conformance: ${name}`, () => {
    let h: PeerLinkHarness
    beforeEach(() => {
      h = harness()
    })
    afterEach(async () => {
      await h.dispose()
    })

    test("bytes arrive intact and in order, both ways, never inside send", async () => {
      const [a, b] = await h.pair()
      const atA = recorder()
      const atB = recorder()
      a.subscribe(atA.listener)
      b.subscribe(atB.listener)
      for (let i = 0; i < 50; i++) {
        a.send(bytesOf(i))
        b.send(bytesOf(1000 + i))
        expect(atB.got.length + atA.got.length).toBe(0)
      }
      expect(await until(() => atB.got.length === 50 && atA.got.length === 50, 5_000)).toBe(true)
      expect(atB.got).toEqual(Array.from({ length: 50 }, (_, i) => bytesOf(i)))
      expect(atA.got).toEqual(Array.from({ length: 50 }, (_, i) => bytesOf(1000 + i)))
    })

    test("an unsubscribed listener hears nothing more", async () => {
      const [a, b] = await h.pair()
      const kept = recorder()
      const gone = recorder()
      b.subscribe(kept.listener)
      const off = b.subscribe(gone.listener)
      off()
      a.send(bytesOf(1))
      expect(await until(() => kept.got.length === 1, 5_000)).toBe(true)
      expect(gone.got).toEqual([])
    })

    test("close() tells close then end once, drops the listeners, and send becomes a no-op", async () => {
      const [a, b] = await h.pair()
      const atA = recorder()
      const atB = recorder()
      a.subscribe(atA.listener)
      b.subscribe(atB.listener)
      expect(a.isOpen).toBe(true)
      a.close()
      expect(a.isOpen).toBe(false)
      expect(atA.events).toEqual(["close", "end"])
      a.close()
      expect(() => a.send(bytesOf(2))).not.toThrow()
      // A listener added after the end is never called; the closed end delivers nothing.
      const late = recorder()
      a.subscribe(late.listener)
      expect(late.events).toEqual([])
      b.send(bytesOf(3))
      await until(() => false, 100)
      expect(atA.events).toEqual(["close", "end"])
      expect(atA.got).toEqual([])
      // It hears the end (on a later turn), so a session made on an ended link lets go.
      expect(late.events).toEqual(["end"])
      expect(atB.got).toEqual([])
    })
  })
}
