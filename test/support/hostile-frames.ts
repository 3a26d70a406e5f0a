/**
 * Hand-made wire bytes for the hostile suite, written from the protocol's specification
 * (the header of core/protocol/codec.ts) without going through the codec's encoder: the
 * encoder may (rightly) refuse to produce some of these shapes, and an attacker does not use
 * it anyway. The suite checks that each frame decodes with the codec's own decoder, so a
 * mistake here shows up as such, not as a hub bug.
 *
 * Canonical values (core/canonical.ts): a tag byte, then null 0, false 1, true 2,
 * undefined 3, int 4 (zigzag varint), float 5, string 6 (str), bytes 7, array 8 (u n, items),
 * object 9 (u n, then n x (str key, value), keys sorted).
 */

const SUBSCRIBE = 0x02
const SUBMIT = 0x03
const SUBMIT2 = 0x08
const T_INT = 4
const T_STRING = 6
const T_ARRAY = 8
const T_OBJECT = 9

const utf8 = new TextEncoder()

/** Unsigned LEB128 of an integer in [0, 2^53): arithmetic, not bit operators (they stop at 2^31). */
export const varint = (n: number): number[] => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint of ${n}`)
  const out: number[] = []
  let v = n
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return out
}

const zigzag = (d: number): number => (d >= 0 ? d * 2 : -d * 2 - 1)

/** Concatenates byte pieces. */
export const bytes = (...parts: ReadonlyArray<Uint8Array | ReadonlyArray<number>>): Uint8Array => {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** `str`: u byte length, then UTF-8. */
export const str = (s: string): Uint8Array => {
  const b = utf8.encode(s)
  return bytes(varint(b.length), b)
}

/** Canonical values, as bytes. */
export const V = {
  str: (s: string): Uint8Array => bytes([T_STRING], str(s)),
  int: (n: number): Uint8Array => bytes([T_INT], varint(zigzag(n))),
  arr: (items: ReadonlyArray<Uint8Array>): Uint8Array => bytes([T_ARRAY], varint(items.length), ...items),
  /** An object; keys are written sorted, as the canonical encoding does (own "__proto__" included). */
  obj: (fields: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array => {
    const sorted = [...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return bytes([T_OBJECT], varint(sorted.length), ...sorted.flatMap(([k, v]) => [str(k), v]))
  },
  /** `levels` arrays nested in one another, the innermost empty. */
  nested: (levels: number): Uint8Array => {
    const out = new Uint8Array(levels * 2)
    for (let i = 0; i < levels - 1; i++) {
      out[i * 2] = T_ARRAY
      out[i * 2 + 1] = 1
    }
    out[(levels - 1) * 2] = T_ARRAY
    out[(levels - 1) * 2 + 1] = 0
    return out
  },
}

export interface RawCommand {
  readonly clientSeq: number
  readonly name: string
  /** The canonical bytes of the arguments (see `V`). */
  readonly args: Uint8Array
}

/**
 * A submit frame: `0x03 0x00 | str docId, u ackedClientSeq, u n, n x (clientSeq, name, val args)`;
 * the first clientSeq as u, each next as z(delta - 1); each name defined once (k = 0) and
 * referenced (k >= 1) after.
 */
export const submitFrame = (docId: string, ackedClientSeq: number, commands: ReadonlyArray<RawCommand>): Uint8Array => {
  const parts: Array<Uint8Array | number[]> = [[SUBMIT, 0], str(docId), varint(ackedClientSeq), varint(commands.length)]
  const names: string[] = []
  let prev = 0
  commands.forEach((c, i) => {
    parts.push(i === 0 ? varint(c.clientSeq) : varint(zigzag(c.clientSeq - prev - 1)))
    prev = c.clientSeq
    const k = names.indexOf(c.name)
    if (k >= 0) parts.push(varint(k + 1))
    else {
      names.push(c.name)
      parts.push([0], str(c.name))
    }
    parts.push(c.args)
  })
  return bytes(...parts)
}

/**
 * A submit of one Todo `add { id, title }` whose frame is exactly `frameBytes` long (the title
 * is padding). Throws if no title length lands exactly there (a varint length boundary).
 */
export const addFrameOfSize = (docId: string, clientSeq: number, id: string, frameBytes: number): Uint8Array => {
  const frameWith = (n: number) =>
    submitFrame(docId, 0, [{ clientSeq, name: "add", args: V.obj([["id", V.str(id)], ["title", V.str("x".repeat(n))]]) }])
  const base = frameWith(0).length
  for (let n = Math.max(0, frameBytes - base - 8); n <= frameBytes - base; n++) {
    // Length of the frame for a title of n bytes, without building it.
    if (base - 1 + varint(n).length + n === frameBytes) {
      const frame = frameWith(n)
      if (frame.length !== frameBytes) throw new Error(`add frame is ${frame.length} bytes, wanted ${frameBytes}`)
      return frame
    }
  }
  throw new Error(`no title length gives an add frame of exactly ${frameBytes} bytes`)
}

/**
 * A subscribe frame: `0x02 0x00 | str docId, str machine, u version, str fingerprint, u fromSeq,
 * u ackedClientSeq`. The codec's encoder refuses a docId over the protocol's limit; this does not.
 */
export const subscribeFrame = (docId: string, machine: { readonly name: string; readonly version: number; readonly fingerprint: string }, fromSeq = 0): Uint8Array =>
  bytes([SUBSCRIBE, 0], str(docId), str(machine.name), varint(machine.version), str(machine.fingerprint), varint(fromSeq), varint(0))

/** A protocol 2 command: a new name (defined for the connection's life) or the k-th defined, and compact argument bytes. */
export interface RawCommand2 {
  readonly clientSeq: number
  readonly name: string | number
  readonly args: Uint8Array
}

/**
 * A protocol 2 submit frame: `0x08 0x00 | u channel, u ackedClientSeq, u n, n x (clientSeq,
 * name, bytes args)`; a name is `0, str` (a new one for the connection) or `k` (the k-th).
 */
export const submit2Frame = (channel: number, commands: ReadonlyArray<RawCommand2>): Uint8Array => {
  const parts: Array<Uint8Array | number[]> = [[SUBMIT2, 0], varint(channel), varint(0), varint(commands.length)]
  let prev = 0
  commands.forEach((c, i) => {
    parts.push(i === 0 ? varint(c.clientSeq) : varint(zigzag(c.clientSeq - prev - 1)))
    prev = c.clientSeq
    parts.push(typeof c.name === "number" ? varint(c.name) : bytes([0], str(c.name)))
    parts.push(varint(c.args.length), c.args)
  })
  return bytes(...parts)
}

/**
 * Compact arguments (core/protocol/args-codec.ts, form 0) of `Array(Array(<no bytes>))` where
 * each of `outer` inner arrays claims as many elements as a per-array bound of `remaining +
 * 65,536` would allow: a few hundred bytes that once decoded into millions of values.
 */
export const nestedEmptyArrays = (outer: number): Uint8Array => {
  const parts: number[][] = [[0], varint(outer)]
  for (let i = 0; i < outer; i++) parts.push(varint(65_536 + 3 * (outer - i - 1)))
  return bytes(...parts)
}
