/** Hand-made Automerge sync message bytes for the tests of the check from bytes (adapters/automerge/admit.ts). */

/** An unsigned LEB128, as Automerge writes its counts. */
export const varint = (n: number): number[] => {
  const o: number[] = []
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    o.push(b)
  } while (n > 0)
  return o
}

/** 0x42 | heads [] | need [] | `h` x {lastSync [], bloom b""} | changes []: 8 MB of it froze a hub once decoded. */
export const haveFlood = (h: number): Uint8Array => {
  const v = varint(h)
  const out = new Uint8Array(3 + v.length + 2 * h + 1)
  out.set([0x42, 0, 0, ...v])
  return out
}
