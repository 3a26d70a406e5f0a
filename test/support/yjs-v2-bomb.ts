import * as encoding from "lib0/encoding"

/**
 * A forged Yjs V2 update of `n` GC structs in about 26 bytes: the info and length columns are
 * each one run that repeats forever. Peers' V2 updates are refused (test/crdt-yjs.test.ts);
 * a field state from a hub is counted before it loads (test/client-hostile-hub.test.ts).
 */
export const v2Bomb = (n: number): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  const stream = (f: (s: encoding.Encoder) => void) => {
    const s = encoding.createEncoder()
    f(s)
    encoding.writeVarUint8Array(e, encoding.toUint8Array(s))
  }
  stream(() => {}); stream((s) => encoding.writeVarInt(s, 77)); stream(() => {}); stream(() => {})
  stream((s) => encoding.writeUint8(s, 0)); stream((s) => encoding.writeVarString(s, "")); stream(() => {}); stream(() => {})
  stream((s) => { encoding.writeVarInt(s, -1); encoding.writeVarUint(s, n) })
  encoding.writeVarUint(e, 1); encoding.writeVarUint(e, n); encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 0)
  return encoding.toUint8Array(e)
}
