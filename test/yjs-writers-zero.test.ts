/**
 * Yjs `writers` (adapters/yjs-server/engine.ts) counts a struct as writing only if it ends
 * past the document's clock; a zero-length Item (ContentString "") at the clock of another
 * user's next edit ends exactly there, so it is not judged and is integrated under that
 * user's clientID. Its ID is the one the owner's next character takes: the owner's next
 * edit (made after hearing the fan-out, as a stock client does) refers to it and is refused
 * `update-missing-deps` (over y-websocket: closed 4400, for good). Found by an attack review;
 * a struct of length 0 is now refused as malformed, in both Yjs engines.
 */
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const host = (storage: MemoryStorage, compactAfterBytes = 1 << 30) => new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false, compactAfterBytes })

/** own GC (1 clock) + `n` zero-length string Items for `victim` at `clock`, origin (victim, clock-1), root "t". */
const zeroItems = (own: number, ownClock: number, victim: number, clock: number, n: number): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 1); encoding.writeVarUint(e, own); encoding.writeVarUint(e, ownClock); encoding.writeUint8(e, 0); encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, n); encoding.writeVarUint(e, victim); encoding.writeVarUint(e, clock)
  for (let i = 0; i < n; i++) {
    encoding.writeUint8(e, 4 | 0x80) // ContentString with origin
    encoding.writeVarUint(e, victim); encoding.writeVarUint(e, clock - 1)
    encoding.writeVarString(e, "")
  }
  encoding.writeVarUint(e, 0)
  return encoding.toUint8Array(e)
}

test("zero-length Items under another user's clientID neither break its later edits nor make replicas diverge", async () => {
  const storage = new MemoryStorage()
  let h = host(storage, 1)
  let doc = await h.open<Y.Doc>("yjs", "z2")
  const ann = new Y.Doc(); ann.clientID = 7
  const ups: Uint8Array[] = []
  ann.on("update", (u: Uint8Array) => ups.push(u))
  ann.getText("t").insert(0, "abc")
  expect(await doc.submit(ups.splice(0), undefined, "ann")).toMatchObject({ stored: 1, rejected: [] })
  const z = zeroItems(9001, 0, 7, 3, 3)
  let out, err
  try { out = await doc.submit([z], undefined, "mallory") } catch (e) { err = String(e) }
  // Refused: a struct of length 0 is not what Yjs makes (adapters/yjs/integrable.ts).
  expect(out?.rejected.map((r) => r.code)).toEqual(["update-malformed"])
  // ann hears it only if the hub took it (fan-out).
  let annErr
  try { if (out !== undefined && out.stored > 0) Y.applyUpdate(ann, z) } catch (e) { annErr = String(e) }
  ann.getText("t").insert(3, "def")
  const o2 = await doc.submit(ups.splice(-1), undefined, "ann")
  const fresh = new Y.Doc(); Y.applyUpdate(fresh, Y.encodeStateAsUpdate(doc.doc))
  await h.close()
  h = host(storage)
  let reloaded = "", loadErr
  try { doc = await h.open<Y.Doc>("yjs", "z2"); reloaded = doc.doc.getText("t").toString() } catch (e) { loadErr = String(e) }
  const res = { out: out && { stored: out.stored, rejected: out.rejected.map((r) => r.code) }, err, annErr, o2: o2.rejected.map((r) => r.code), hub: fresh.getText("t").toString(), ann: ann.getText("t").toString(), reloaded, loadErr }
  expect({ ann: res.ann, hub: res.hub, reloaded, loadErr, o2: res.o2 }).toEqual({ ann: "abcdef", hub: "abcdef", reloaded: "abcdef", loadErr: undefined, o2: [] })
  await h.close()
})
