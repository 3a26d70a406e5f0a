/**
 * Canonical encoding: round trips, key-order independence, refusal of non-plain data, and a
 * decoder that only ever fails with `decode-failed` (never a RangeError, a stack overflow or
 * a huge allocation), whatever bytes it is given.
 */
import fc from "fast-check"
import * as vm from "node:vm"
import { MAX_DEPTH, decodeCanonical, decodeCanonicalSliced, encodeCanonical, primitiveBytes } from "../core/canonical.js"
import { CanonError } from "../core/errors.js"
import { wellFormed } from "../core/bytes.js"

// ---- helpers ----

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")

/** Defines an own, enumerable property: a "__proto__" key stays a plain key. */
const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

/** What a value should decode to: properties whose value is undefined are left out. */
const normalize = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(normalize)
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k]
    if (x !== undefined) put(out, k, normalize(x))
  }
  return out
}

/** The same value with every object's keys inserted in reverse order (rotated for variety). */
const reorder = (v: unknown, rotate: number): unknown => {
  if (Array.isArray(v)) return v.map((x) => reorder(x, rotate + 1))
  if (v instanceof Uint8Array) return new Uint8Array(v)
  if (v === null || typeof v !== "object") return v
  const keys = Object.keys(v).reverse()
  const r = keys.length === 0 ? 0 : rotate % keys.length
  const order = [...keys.slice(r), ...keys.slice(0, r)]
  const out: Record<string, unknown> = {}
  for (const k of order) put(out, k, reorder((v as Record<string, unknown>)[k], rotate + 1))
  return out
}

/** Exact structural equality: Object.is on scalars, same own keys, same bytes, same array lengths. */
const same = (a: unknown, b: unknown, path = "$"): void => {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || hex(a) !== hex(b)) throw new Error(`${path}: bytes differ`)
    return
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) throw new Error(`${path}: arrays differ`)
    for (let i = 0; i < a.length; i++) same(a[i], b[i], `${path}[${i}]`)
    return
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort()
    const kb = Object.keys(b).sort()
    if (JSON.stringify(ka) !== JSON.stringify(kb)) throw new Error(`${path}: keys ${JSON.stringify(ka)} vs ${JSON.stringify(kb)}`)
    for (const k of ka) same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)
    return
  }
  if (!Object.is(a, b)) throw new Error(`${path}: ${String(a)} vs ${String(b)}`)
}

/** Runs `fn` and returns the CanonError it throws (fails the test if it throws anything else or nothing). */
const canonErrorOf = (fn: () => unknown): CanonError => {
  let thrown: unknown
  try {
    fn()
  } catch (e) {
    thrown = e
  }
  if (!(thrown instanceof CanonError)) {
    throw new Error(`Expected a CanonError, got ${thrown === undefined ? "no error" : String((thrown as Error)?.stack ?? thrown)}`)
  }
  return thrown
}

const T_NULL = 0
const T_STRING = 6
const T_BYTES = 7
const T_ARRAY = 8
const T_OBJECT = 9

const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

// ---- arbitraries ----

const specialNumbers = fc.constantFrom(
  0, -0, NaN, Infinity, -Infinity, 1, -1, 0.5, -1.5,
  2 ** 52 - 1, -(2 ** 52 - 1), 2 ** 52, -(2 ** 52), 2 ** 52 + 2, 2 ** 53, -(2 ** 53),
  Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 60, -(2 ** 64), 1e21, -1e300,
  Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, 2 ** 31, 2 ** 32, -(2 ** 31) - 1,
)
const numbers = fc.oneof(specialNumbers, fc.integer(), fc.maxSafeInteger(), fc.double(), fc.integer({ min: -200, max: 200 }))
const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.string({ unit: "binary-ascii", minLength: 60, maxLength: 140 }),
)
const keys = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.string({ unit: "binary", maxLength: 4 }),
  fc.constantFrom("", "__proto__", "constructor", "toString", "0", "1", "10", "2", "-1", "a", "b", "A", "é", "\u{1F600}"),
)
const scalar = fc.oneof(fc.constant(null), fc.boolean(), numbers, strings, fc.uint8Array({ maxLength: 40 }))

const { value: plainValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("array"), tie("object")),
  array: fc.array(fc.oneof(tie("value"), fc.constant(undefined)), { maxLength: 6 }),
  object: fc
    .array(fc.tuple(keys, fc.oneof(tie("value"), fc.constant(undefined))), { maxLength: 6 })
    .map((entries) => {
      const o: Record<string, unknown> = {}
      for (const [k, v] of entries) put(o, k, v)
      return o
    }),
}))

// ---- round trip ----

describe("canonical encoding round trip", () => {
  test("generated plain values decode to what was encoded (undefined properties left out)", () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        const bytes = encodeCanonical(v)
        const back = decodeCanonical(bytes)
        same(back, normalize(v))
        // The decoded value encodes to the same bytes: the encoding is a fixed point.
        expect(hex(encodeCanonical(back))).toBe(hex(bytes))
      }),
      { seed: 42, numRuns: 1500 },
    )
  })

  test("numbers keep their exact value, including -0, NaN, infinities and large integers", () => {
    const samples = [0, -0, NaN, Infinity, -Infinity, 2 ** 52 - 1, -(2 ** 52 - 1), 2 ** 52, -(2 ** 52), 2 ** 53, 2 ** 53 + 2,
      Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 64, 1e21, 5e-324, 0.1 + 0.2, -123456789012]
    for (const n of samples) {
      const back = decodeCanonical(encodeCanonical(n))
      expect(Object.is(back, n)).toBe(true)
      const [inArray, inObject] = decodeCanonical(encodeCanonical([n, { n }])) as [number, { n: number }]
      expect(Object.is(inArray, n)).toBe(true)
      expect(Object.is(inObject.n, n)).toBe(true)
    }
    // 0 and -0 are different values, so they have different bytes.
    expect(hex(encodeCanonical(0))).not.toBe(hex(encodeCanonical(-0)))
  })

  test("Uint8Array round trips as an independent copy", () => {
    const src = new Uint8Array([1, 2, 3, 250, 0])
    const bytes = encodeCanonical({ b: src })
    const back = decodeCanonical(bytes) as { b: Uint8Array }
    expect(back.b).toBeInstanceOf(Uint8Array)
    expect([...back.b]).toEqual([1, 2, 3, 250, 0])
    // Not a view into the encoded buffer.
    bytes.fill(0)
    expect([...back.b]).toEqual([1, 2, 3, 250, 0])
    // A view into a bigger buffer encodes only its own bytes.
    const big = new Uint8Array([9, 9, 1, 2, 3, 250, 0, 9])
    expect(hex(encodeCanonical({ b: big.subarray(2, 7) }))).toBe(hex(encodeCanonical({ b: src })))
  })

  test("strings of every length class and width round trip", () => {
    const lengths = [0, 1, 31, 32, 33, 42, 43, 63, 64, 65, 127, 128, 129, 5000, 5461, 5462, 16384, 699050, 699051, 800000]
    const units = ["a", "\u00e9", "\u20ac", "\u{1F600}", "a\u00e9\u20ac\u{1F600}"]
    for (const unit of units) {
      for (const n of lengths) {
        const s = unit.repeat(Math.ceil(n / unit.length))
        const back = decodeCanonical(encodeCanonical({ s, after: 7 })) as { s: string; after: number }
        expect(back.s.length).toBe(s.length)
        expect(back.s === s).toBe(true)
        expect(back.after).toBe(7)
      }
    }
  })

  test("a decoded '__proto__' key is a plain key, not a prototype", () => {
    const o: Record<string, unknown> = {}
    put(o, "__proto__", { polluted: true })
    const back = decodeCanonical(encodeCanonical(o)) as Record<string, unknown>
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.keys(back)).toEqual(["__proto__"])
    expect((back as { polluted?: unknown }).polluted).toBeUndefined()
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined()
  })

  test("strings with lone surrogates round trip exactly or are refused (never silently changed)", () => {
    // Two different strings must never share bytes: a state hash over them would lie, and a
    // replica loading a snapshot would get a different state than the authority's.
    for (const s of ["\uD800", "a\uDC00b", "\uDBFF\uDBFF", "x\uD83D"]) {
      let bytes: Uint8Array
      try {
        bytes = encodeCanonical(s)
      } catch (e) {
        expect(e).toBeInstanceOf(CanonError)
        expect((e as CanonError).code).toBe("state-unencodable")
        continue
      }
      expect(JSON.stringify(decodeCanonical(bytes))).toBe(JSON.stringify(s))
      expect(hex(bytes)).not.toBe(hex(encodeCanonical(s.replace(/[\uD800-\uDFFF]/g, "\uFFFD"))))
    }
  })

  test("the returned bytes are not shared with later encodings", () => {
    const a = encodeCanonical({ x: 1, y: "first" })
    const copy = hex(a)
    encodeCanonical({ x: 2, y: "second, longer than the first" })
    encodeCanonical("z".repeat(200_000))
    expect(hex(a)).toBe(copy)
  })

  test("an encoding that failed half way does not spoil the next one", () => {
    const expected = hex(encodeCanonical({ a: [1, 2, 3] }))
    expect(canonErrorOf(() => encodeCanonical({ a: [1, 2, new Map()] })).code).toBe("state-unencodable")
    expect(hex(encodeCanonical({ a: [1, 2, 3] }))).toBe(expected)
  })
})

// ---- canonical form ----

describe("canonical form", () => {
  test("the same object built in a different key order has the same bytes", () => {
    fc.assert(
      fc.property(plainValue, fc.nat(7), (v, rotate) => {
        expect(hex(encodeCanonical(reorder(v, rotate)))).toBe(hex(encodeCanonical(v)))
      }),
      { seed: 42, numRuns: 800 },
    )
  })

  test("concrete key orders: nested objects, integer-like keys", () => {
    const a = { b: 1, a: { y: [1, { q: 1, p: 2 }], x: null }, 10: "ten", 2: "two" }
    const b = { 2: "two", a: { x: null, y: [1, { p: 2, q: 1 }] }, 10: "ten", b: 1 }
    expect(hex(encodeCanonical(a))).toBe(hex(encodeCanonical(b)))
    expect(Object.keys(decodeCanonical(encodeCanonical(a)) as object)).toEqual(expect.arrayContaining(["10", "2", "a", "b"]))
  })

  test("a property whose value is undefined encodes as if absent", () => {
    expect(hex(encodeCanonical({ a: 1, b: undefined }))).toBe(hex(encodeCanonical({ a: 1 })))
    expect(hex(encodeCanonical({ b: undefined }))).toBe(hex(encodeCanonical({})))
    // In an array, undefined is an element.
    expect(hex(encodeCanonical([undefined]))).not.toBe(hex(encodeCanonical([])))
  })

  test("null-prototype and other-realm objects are plain data with the same bytes", () => {
    const nullProto = Object.create(null) as Record<string, unknown>
    nullProto.k = 1
    nullProto.a = [true]
    expect(hex(encodeCanonical(nullProto))).toBe(hex(encodeCanonical({ a: [true], k: 1 })))
    const foreign = vm.runInNewContext("({ k: 1, a: [true], b: new Uint8Array([1, 2]) })")
    expect(hex(encodeCanonical(foreign))).toBe(hex(encodeCanonical({ a: [true], b: new Uint8Array([1, 2]), k: 1 })))
  })

  test("values nested exactly MAX_DEPTH deep encode; one level more is refused", () => {
    let ok: unknown = 1
    for (let i = 0; i < MAX_DEPTH; i++) ok = [ok]
    expect(decodeCanonical(encodeCanonical(ok))).toEqual(ok)
    expect(canonErrorOf(() => encodeCanonical([ok])).code).toBe("state-unencodable")
    let obj: unknown = 1
    for (let i = 0; i <= MAX_DEPTH; i++) obj = { o: obj }
    expect(canonErrorOf(() => encodeCanonical(obj)).code).toBe("state-unencodable")
  })
})

// ---- refusals ----

describe("non-plain data is refused with state-unencodable", () => {
  class Point {
    constructor(readonly x: number, readonly y: number) {}
  }
  const cases: Array<[string, () => unknown]> = [
    ["Map", () => new Map([["a", 1]])],
    ["Set", () => new Set([1])],
    ["Date", () => new Date(0)],
    ["class instance", () => new Point(1, 2)],
    ["RegExp", () => /x/],
    ["Error", () => new Error("e")],
    ["boxed number", () => new Number(1)],
    ["boxed string", () => new String("s")],
    ["Promise", () => Promise.resolve(1)],
    ["Int8Array", () => new Int8Array(2)],
    ["Uint16Array", () => new Uint16Array(2)],
    ["Float64Array", () => new Float64Array(2)],
    ["ArrayBuffer", () => new ArrayBuffer(4)],
    ["DataView", () => new DataView(new ArrayBuffer(4))],
    ["object with a prototype", () => Object.create({ inherited: 1 })],
    ["function", () => () => 1],
    ["symbol", () => Symbol("s")],
    ["bigint", () => 10n],
  ]
  for (const [name, make] of cases) {
    test(name, () => {
      for (const wrap of [(v: unknown) => v, (v: unknown) => [1, v], (v: unknown) => ({ a: { b: [v] } })]) {
        const e = canonErrorOf(() => encodeCanonical(wrap(make())))
        expect(e.code).toBe("state-unencodable")
        expect(e.message.length).toBeGreaterThan(0)
      }
    })
  }
})

// ---- decoding hostile input ----

const expectDecodeFailed = (bytes: Uint8Array): void => {
  const e = canonErrorOf(() => decodeCanonical(bytes))
  expect(e.code).toBe("decode-failed")
}

/** Decodes, and checks that any failure is a decode-failed CanonError. */
const decodeOrFail = (bytes: Uint8Array): void => {
  try {
    decodeCanonical(bytes)
  } catch (e) {
    if (!(e instanceof CanonError) || e.code !== "decode-failed") {
      throw new Error(`Input ${hex(bytes)} threw ${String((e as Error)?.stack ?? e)}`)
    }
  }
}

describe("decoding garbage", () => {
  test("random bytes either decode or fail with decode-failed, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => decodeOrFail(bytes)),
      { seed: 42, numRuns: 3000 },
    )
  })

  test("random bytes that start like containers either decode or fail with decode-failed", () => {
    const tagged = fc
      .tuple(fc.constantFrom(T_ARRAY, T_OBJECT, T_STRING, T_BYTES, 4, 5), fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 40 }), fc.uint8Array({ maxLength: 24 }))
      .map(([tag, small, tail]) => new Uint8Array([tag, ...small, ...tail]))
    fc.assert(fc.property(tagged, (bytes) => decodeOrFail(bytes)), { seed: 42, numRuns: 3000 })
  })

  test("every strict prefix of a valid encoding fails with decode-failed", () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        const bytes = encodeCanonical(v)
        for (let n = 0; n < bytes.length; n++) expectDecodeFailed(bytes.subarray(0, n))
      }),
      { seed: 42, numRuns: 150 },
    )
  })

  test("trailing bytes after a value fail with decode-failed", () => {
    fc.assert(
      fc.property(plainValue, fc.uint8Array({ minLength: 1, maxLength: 4 }), (v, extra) => {
        const bytes = encodeCanonical(v)
        const withExtra = new Uint8Array(bytes.length + extra.length)
        withExtra.set(bytes)
        withExtra.set(extra, bytes.length)
        expectDecodeFailed(withExtra)
      }),
      { seed: 42, numRuns: 300 },
    )
  })

  test("valid encodings with corrupted bytes decode or fail with decode-failed", () => {
    fc.assert(
      fc.property(plainValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (v, edits) => {
        const bytes = encodeCanonical(v)
        for (const [at, b] of edits) bytes[at % bytes.length] = b
        decodeOrFail(bytes)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  test("bad varints, floats and UTF-8 fail with decode-failed", () => {
    expectDecodeFailed(new Uint8Array([]))
    expectDecodeFailed(new Uint8Array([4, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])) // varint > 53 bits
    expectDecodeFailed(new Uint8Array([4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])) // 2^56 - 1
    expectDecodeFailed(new Uint8Array([4, 0x80])) // varint cut short
    expectDecodeFailed(new Uint8Array([5, 0, 0, 0])) // float cut short
    expectDecodeFailed(new Uint8Array([T_STRING, 2, 0xc3, 0x28])) // invalid UTF-8
    expectDecodeFailed(new Uint8Array([T_STRING, 40, ...new Array<number>(39).fill(0x61), 0xff])) // invalid UTF-8, long path
    expectDecodeFailed(new Uint8Array([T_OBJECT, 1, 1, 0xff, T_NULL])) // invalid UTF-8 in a key
    expectDecodeFailed(new Uint8Array([200])) // unknown tag
    expectDecodeFailed(new Uint8Array([T_NULL, T_NULL])) // trailing
  })

  test("deep nesting from the wire fails with decode-failed, not a stack overflow", () => {
    for (const tag of [T_ARRAY, T_OBJECT]) {
      const depth = 100_000
      const bytes: number[] = []
      for (let i = 0; i < depth; i++) bytes.push(...(tag === T_ARRAY ? [T_ARRAY, 1] : [T_OBJECT, 1, 1, 0x6b]))
      bytes.push(T_NULL)
      expectDecodeFailed(new Uint8Array(bytes))
    }
    // Exactly MAX_DEPTH levels still decode; MAX_DEPTH + 1 do not.
    const nest = (levels: number): Uint8Array => {
      const b: number[] = []
      for (let i = 0; i < levels; i++) b.push(T_ARRAY, 1)
      b.push(T_NULL)
      return new Uint8Array(b)
    }
    expect(() => decodeCanonical(nest(MAX_DEPTH))).not.toThrow()
    expectDecodeFailed(nest(MAX_DEPTH + 1))
  })
})

describe("lying lengths", () => {
  const huge = [2 ** 16, 2 ** 20, 2 ** 24, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]

  /** Decodes while watching every `new Array(n)`: nothing larger than the input may be allocated. */
  const watchArrays = (bytes: Uint8Array): number[] => {
    const sizes: number[] = []
    const Original = globalThis.Array
    const spy = new Proxy(Original, {
      construct(target, args, newTarget) {
        if (typeof args[0] === "number") sizes.push(args[0])
        return Reflect.construct(target, args, newTarget)
      },
    })
    ;(globalThis as { Array: ArrayConstructor }).Array = spy
    try {
      decodeCanonical(bytes)
    } catch {
      // checked by the caller
    } finally {
      ;(globalThis as { Array: ArrayConstructor }).Array = Original
    }
    return sizes
  }

  for (const n of huge) {
    test(`a claimed length of ${n} with a few bytes behind it fails without allocating it`, () => {
      for (const tag of [T_ARRAY, T_OBJECT, T_STRING, T_BYTES]) {
        const bytes = new Uint8Array([tag, ...varint(n), T_NULL, T_NULL, T_NULL])
        expectDecodeFailed(bytes)
        for (const size of watchArrays(bytes)) expect(size).toBeLessThanOrEqual(bytes.length)
      }
      // Inside a container, and as an object key's length.
      expectDecodeFailed(new Uint8Array([T_ARRAY, 2, T_NULL, T_ARRAY, ...varint(n), T_NULL]))
      expectDecodeFailed(new Uint8Array([T_OBJECT, 1, ...varint(n), 0x61, T_NULL]))
    })
  }

  test("random lying counts: never an allocation larger than the input", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 200_000 }), fc.nat(40), fc.constantFrom(T_ARRAY, T_OBJECT), (n, filler, tag) => {
        const bytes = new Uint8Array([T_ARRAY, 1, tag, ...varint(n), ...new Array<number>(filler).fill(T_NULL)])
        fc.pre(n > bytes.length)
        expectDecodeFailed(bytes)
        const sizes = watchArrays(bytes)
        expect(Math.max(0, ...sizes)).toBeLessThanOrEqual(bytes.length)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })
})

// ---- one value, one encoding ----

const f64 = (n: number): number[] => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setFloat64(0, n)
  return [...b]
}
const T_UNDEFINED = 3
const T_INT = 4
const T_FLOAT = 5

describe("the decoder accepts canonical input only", () => {
  test("non-minimal varints, in values, lengths and counts", () => {
    expectDecodeFailed(new Uint8Array([T_INT, 0x80, 0x00])) // 0 in two bytes
    expectDecodeFailed(new Uint8Array([T_INT, 0x81, 0x80, 0x00])) // 1 in three bytes
    expectDecodeFailed(new Uint8Array([T_STRING, 0x81, 0x00, 0x61])) // length 1 in two bytes
    expectDecodeFailed(new Uint8Array([T_ARRAY, 0x80, 0x00])) // empty array, count in two bytes
    expect(decodeCanonical(new Uint8Array([T_INT, 0x80, 0x01]))).toBe(64) // 128 zigzag: minimal, two bytes
  })

  test("an integer in (-2^52, 2^52) written as a float, or outside it written as a varint", () => {
    for (const n of [0, 1, -1, 2 ** 52 - 1, -(2 ** 52 - 1), 1e15]) expectDecodeFailed(new Uint8Array([T_FLOAT, ...f64(n)]))
    for (const n of [-0, 0.5, 2 ** 52, -(2 ** 52), 2 ** 53, Infinity, -Infinity]) expect(Object.is(decodeCanonical(new Uint8Array([T_FLOAT, ...f64(n)])), n)).toBe(true)
    expect(decodeCanonical(new Uint8Array([T_INT, ...varint(2 ** 53 - 2)]))).toBe(2 ** 52 - 1)
    expectDecodeFailed(new Uint8Array([T_INT, ...varint(2 ** 53 - 1)])) // would be -2^52, a float
  })

  test("NaN: only 0x7ff8000000000000; every NaN encodes to it", () => {
    expect(hex(encodeCanonical(NaN))).toBe("057ff8000000000000")
    const odd = new DataView(new Uint8Array([0x7f, 0xf8, 0, 0, 0, 0, 0, 1]).buffer).getFloat64(0)
    expect(hex(encodeCanonical([odd]))).toBe(hex(encodeCanonical([NaN])))
    expectDecodeFailed(new Uint8Array([T_FLOAT, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1]))
    expectDecodeFailed(new Uint8Array([T_FLOAT, 0xff, 0xf8, 0, 0, 0, 0, 0, 0]))
    expectDecodeFailed(new Uint8Array([T_FLOAT, 0x7f, 0xf0, 0, 0, 0, 0, 0, 1])) // signalling
  })

  test("object keys out of order, duplicated, or with an undefined value", () => {
    const obj = (...pairs: Array<[string, number[]]>): Uint8Array =>
      new Uint8Array([T_OBJECT, pairs.length, ...pairs.flatMap(([k, v]) => [k.length, ...Buffer.from(k), ...v])])
    expect(decodeCanonical(obj(["a", [T_NULL]], ["b", [T_NULL]]))).toEqual({ a: null, b: null })
    expectDecodeFailed(obj(["b", [T_NULL]], ["a", [T_NULL]]))
    expectDecodeFailed(obj(["a", [T_NULL]], ["a", [T_NULL]]))
    expectDecodeFailed(obj(["a", [T_UNDEFINED]]))
    // Order is UTF-16 code unit order, as Array.prototype.sort: "Z" < "a" < "é".
    expect(Object.keys(decodeCanonical(obj(["Z", [T_NULL]], ["a", [T_NULL]])) as object)).toEqual(["Z", "a"])
    expectDecodeFailed(obj(["a", [T_NULL]], ["Z", [T_NULL]]))
    // In arrays, undefined is an element.
    expect(decodeCanonical(new Uint8Array([T_ARRAY, 1, T_UNDEFINED]))).toEqual([undefined])
  })

  test("bytes nested MAX_DEPTH deep are refused both ways (the encoder counts them as a level)", () => {
    let v: unknown = new Uint8Array([1])
    for (let i = 0; i < MAX_DEPTH; i++) v = [v]
    expect(canonErrorOf(() => encodeCanonical(v)).code).toBe("state-unencodable")
    const b: number[] = []
    for (let i = 0; i < MAX_DEPTH; i++) b.push(T_ARRAY, 1)
    expectDecodeFailed(new Uint8Array([...b, T_BYTES, 1, 1]))
  })

  test("a leading U+FEFF is text: it survives a round trip (TextDecoder would strip it)", () => {
    for (const s of ["\uFEFF", "\uFEFFa", "\uFEFF".repeat(40) + "é"]) {
      const bytes = encodeCanonical({ s })
      expect((decodeCanonical(bytes) as { s: string }).s).toBe(s)
      expect(hex(encodeCanonical(decodeCanonical(bytes)))).toBe(hex(bytes))
    }
  })

  /** Byte strings near valid encodings: edits, insertions, deletions, and plain noise. */
  const nearValid = fc.oneof(
    fc.uint8Array({ maxLength: 48 }),
    fc.tuple(plainValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("set", "insert", "delete")), { maxLength: 3 })).map(([v, edits]) => {
      const b = [...encodeCanonical(v)]
      for (const [at, x, how] of edits) {
        const i = at % (b.length + 1)
        if (how === "set" && i < b.length) b[i] = x
        else if (how === "insert") b.splice(i, 0, x)
        else if (how === "delete") b.splice(i, 1)
      }
      return new Uint8Array(b)
    }),
  )

  test("property: every byte string the decoder accepts re-encodes to itself", () => {
    let accepted = 0
    fc.assert(
      fc.property(nearValid, (bytes) => {
        let v: unknown
        try {
          v = decodeCanonical(bytes)
        } catch (e) {
          expect(e).toBeInstanceOf(CanonError)
          return
        }
        accepted++
        expect(hex(encodeCanonical(v))).toBe(hex(bytes))
      }),
      { seed: 7, numRuns: 6000 },
    )
    // The property is not vacuous: many inputs decode.
    expect(accepted).toBeGreaterThan(500)
  })

  describe("decodeCanonicalSliced (a hub's stored states, in pieces between turns)", () => {
    /** Either decoder's answer: the value re-encoded, or the error's code and sentence. */
    const answer = (decode: () => unknown): string => {
      try {
        return `value ${hex(encodeCanonical(decode()))}`
      } catch (e) {
        return `error ${(e as CanonError).code} ${(e as Error).message}`
      }
    }
    const sliced = async (bytes: Uint8Array, pauses = { n: 0 }): Promise<string> => {
      try {
        // Every other pause waits for a macrotask, as a turn of the event loop would.
        const v = await decodeCanonicalSliced(bytes, () => (pauses.n++ % 2 === 0 ? new Promise<void>((r) => setTimeout(r, 0)) : undefined))
        return `value ${hex(encodeCanonical(v))}`
      } catch (e) {
        return `error ${(e as CanonError).code} ${(e as Error).message}`
      }
    }

    test("property: the same answer as decodeCanonical, value or error, for near-valid bytes and plain values", async () => {
      await fc.assert(fc.asyncProperty(nearValid, async (bytes) => expect(await sliced(bytes)).toBe(answer(() => decodeCanonical(bytes)))), { seed: 13, numRuns: 3000 })
      await fc.assert(fc.asyncProperty(plainValue, async (v) => {
        const bytes = encodeCanonical(v)
        expect(await sliced(bytes)).toBe(answer(() => decodeCanonical(bytes)))
      }), { seed: 17, numRuns: 1000 })
    })

    test("large and deep states: pauses between pieces, the same tree, marked verified; depth and trailing bytes refused alike", async () => {
      const state = { cards: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`c${i}`, { title: `t${i}`, tags: [i, "x", null], done: i % 2 === 0 }])), empty: {}, list: [] }
      const bytes = encodeCanonical(state)
      const pauses = { n: 0 }
      expect(await sliced(bytes, pauses)).toBe(`value ${hex(bytes)}`)
      expect(pauses.n).toBeGreaterThan(50)
      let deep: unknown = 1
      for (let i = 0; i < MAX_DEPTH; i++) deep = i % 2 === 0 ? [deep] : { k: deep }
      const deepBytes = encodeCanonical(deep)
      expect(await sliced(deepBytes)).toBe(`value ${hex(deepBytes)}`)
      const tooDeep = new Uint8Array([...new Array<number>(MAX_DEPTH + 1).fill(0).flatMap(() => [8, 1]), 0])
      expect(await sliced(tooDeep)).toBe(answer(() => decodeCanonical(tooDeep)))
      expect(await sliced(tooDeep)).toMatch(/^error decode-failed/)
      const trailing = new Uint8Array([...bytes, 0])
      expect(await sliced(trailing)).toBe(answer(() => decodeCanonical(trailing)))
      expect(await sliced(trailing)).toMatch(/^error decode-failed .*bytes left/)
    })
  })

  test("property: every plain value decodes to what reads the same and re-encodes identically", () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        const bytes = encodeCanonical(v)
        const back = decodeCanonical(bytes)
        same(back, normalize(v))
        expect(hex(encodeCanonical(back))).toBe(hex(bytes))
        expect(hex(encodeCanonical(decodeCanonical(encodeCanonical(back))))).toBe(hex(bytes))
      }),
      { seed: 11, numRuns: 1500 },
    )
  })
})

describe("primitiveBytes", () => {
  test("property: exactly the bytes the encoder writes for a primitive (the hub's size bound subtracts them)", () => {
    const primitive = fc.oneof(
      fc.double(), fc.integer(), fc.maxSafeInteger(), fc.constantFrom(0, -0, 2 ** 52 - 1, -(2 ** 52) + 1, 2 ** 52, 2 ** 53, NaN, Infinity),
      fc.string({ unit: "binary", maxLength: 300 }).filter(wellFormed), fc.boolean(), fc.constantFrom(null, undefined),
    )
    fc.assert(fc.property(primitive, (v) => { expect(primitiveBytes(v)).toBe(encodeCanonical(v).length) }), { seed: 5, numRuns: 2000 })
  })
})
