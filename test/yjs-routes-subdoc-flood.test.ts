/**
 * ATTACK REVIEW 3 (high, event-loop block / memory): the struct bound (countV1Structs, 262,144
 * per update, 1,048,576 per step2) assumes ~1-3 µs of decoding per struct, but a subdocument
 * struct (content ref 9, ContentDoc) costs ~15 µs and ~2.4 KB of heap to decode: Yjs's
 * readContentDoc builds a whole `new Y.Doc` (random client id, uuid-free guid, two promises,
 * event handlers) per struct inside `Y.decodeUpdate`, before unsupportedStructs refuses
 * subdocuments. One such struct is 5 bytes in V1 (info 0x89, origin (1,0), guid "", opts
 * `false` - `false.shouldLoad` is undefined, so createDocFromOpts does not throw).
 *
 * countV1Structs reads ref 9 like any content (case 9: skipString(); skipAny()) and counts it
 * as one cheap struct. Every route runs Y.decodeUpdate on it:
 * - hub documents (yjs-server/engine.ts check), CRDT fields (yjs/engine.ts validate), peer
 *   updates (yjs-sync.ts, 1 MiB / 262,144): 1 MiB = ~209,000 subdocuments -> ~3-4 s of blocked
 *   event loop and ~500 MB of heap per message, then refused ("subdocuments are not supported");
 * - a peer's step2 (64 MiB / 1,048,576 structs): 5 MiB -> measured 26 s and +2.5 GB heap in
 *   Y.decodeUpdate alone (the maxSyncStructs comment promises "about 2 s").
 * (Shared-type structs, ref 7, are the runner-up: ~4 µs and ~750 bytes each at 4 bytes:
 * 1,048,576 in a step2 -> ~4 s.)
 * Canon refuses subdocuments on every route anyway, so counting them costs nothing to refuse.
 *
 * The test counts the Y.Doc objects built while the hub engine checks one such 1 MiB update
 * and while a peer session receives it as an update: it should be refused having built (almost)
 * none. Measured on b72dad4 (jest): 209,708 Y.Docs built per route, ~6 s of blocked event loop each, then refused.
 */
import * as Y from "yjs"
import * as enc from "lib0/encoding"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { YSyncSession, memoryLinkPair } from "../adapters/peer/index.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep } from "./support/ws.js"

/** One root text item (client 1), then as many 5-byte subdocument structs (client 2) as fit in `bytes`. */
const subdocFlood = (bytes: number): Uint8Array => {
  const n = Math.floor((bytes - 32) / 5)
  const e = enc.createEncoder()
  enc.writeVarUint(e, 2)
  enc.writeVarUint(e, 1); enc.writeVarUint(e, 1); enc.writeVarUint(e, 0)
  enc.writeUint8(e, 4); enc.writeVarUint(e, 1); enc.writeVarString(e, "t"); enc.writeVarString(e, "a")
  enc.writeVarUint(e, n); enc.writeVarUint(e, 2); enc.writeVarUint(e, 0)
  for (let i = 0; i < n; i++) {
    enc.writeUint8(e, 0x80 | 9) // origin follows; content: subdocument
    enc.writeVarUint(e, 1); enc.writeVarUint(e, 0) // origin (1, 0)
    enc.writeVarString(e, "") // guid
    enc.writeUint8(e, 121) // opts: false
  }
  enc.writeVarUint(e, 0)
  return enc.toUint8Array(e)
}

let docsBuilt = 0
const originalOn = Y.Doc.prototype.on
beforeAll(() => {
  // Every Y.Doc constructor registers one 'load' handler (whenLoaded).
  Y.Doc.prototype.on = function (this: Y.Doc, name: string, f: (...args: any[]) => void) {
    if (name === "load") docsBuilt++
    return originalOn.call(this, name as never, f as never)
  } as typeof Y.Doc.prototype.on
})
afterAll(() => {
  Y.Doc.prototype.on = originalOn
})

test("a 1 MiB update of subdocument structs is refused without building a Y.Doc per struct (hub and peer routes)", async () => {
  const update = subdocFlood(1 << 20)
  expect(update.length).toBeLessThanOrEqual(1 << 20)

  // Hub document route.
  const engine = yjsDocEngine()
  docsBuilt = 0
  let t0 = Date.now()
  const result = await engine.check(update)
  const hubMs = Date.now() - t0
  const hubDocs = docsBuilt

  // Peer session route (an update, not a step2: 1 MiB / 262,144 structs).
  const doc = new Y.Doc()
  const [victim, attacker] = memoryLinkPair()
  const errors: string[] = []
  const session = new YSyncSession(doc, victim, { onError: (e) => errors.push(e.code) })
  await sleep(20)
  docsBuilt = 0
  t0 = Date.now()
  attacker.send(encodeUpdate(update))
  await sleep(20)
  const peerMs = Date.now() - t0
  const peerDocs = docsBuilt
  session.destroy()

  console.log(`${update.length} bytes: hub check ${hubMs} ms, ${hubDocs} Y.Docs built, result ${JSON.stringify(result).slice(0, 120)}; peer ${peerMs} ms, ${peerDocs} Y.Docs built, errors ${errors.join(",")}`)
  expect(result.ok).toBe(false)
  expect(errors.length).toBeGreaterThan(0)
  expect(hubDocs).toBeLessThan(1_000)
  expect(peerDocs).toBeLessThan(1_000)
}, 30_000)
