/**
 * How deep a plain value inside a Yjs update may nest (MAX_VALUE_DEPTH, adapters/yjs/integrable.ts),
 * on every route that counts updates or states before decoding them.
 *
 * Yjs reads and writes values recursively: lib0's readAny/writeAny for ContentAny (and V2's
 * embeds and format values), JSON.stringify for a JSON content and V1's embeds and format
 * values (JSON.parse reads any depth). Measured in Node 20 on this project's machine: a
 * ContentAny of 3,000 nested arrays applies and encodes, 5,000 overflows the stack in
 * `Y.applyUpdate`; a JSON content of 5,000 levels in a 10 KB update applies, and then the
 * document cannot be encoded at all (V1 or V2). A hub took both, so one update made a document
 * no hub could send again, and one just under Node's limit a document that a reader with less
 * stack (a browser, a deep call) cannot read.
 */
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { encodeCanonical } from "../core/canonical.js"
import { yjsEngine } from "../adapters/yjs/engine.js"
import { MAX_VALUE_DEPTH, countV1Structs, countV2Structs } from "../adapters/yjs/integrable.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const TOO_DEEP = new RegExp(`A value nests deeper than ${MAX_VALUE_DEPTH} levels`)

/** A V1 update setting map "m" key "k" to `depth` nested arrays around 0 (`[[0]]` is 2), crafted (Yjs's own encoder recurses). */
const deepAny = (depth: number): Uint8Array => {
  const d = new Y.Doc()
  d.clientID = 7
  d.getMap("m").set("k", [0])
  const hex = Buffer.from(Y.encodeStateAsUpdate(d)).toString("hex")
  const at = hex.indexOf("75017d00") // array of 1, int 0
  return new Uint8Array(Buffer.from(hex.slice(0, at) + "7501".repeat(depth) + "7d00" + hex.slice(at + 8), "hex"))
}

/** A V1 update of one struct in root `root`: a JSON content (2), embed (5) or format (6) holding `json`. */
const jsonStruct = (ref: 2 | 5 | 6, json: string, root = "t"): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1) // clients
  encoding.writeVarUint(e, 1) // structs
  encoding.writeVarUint(e, 9) // client
  encoding.writeVarUint(e, 0) // clock
  encoding.writeUint8(e, ref) // no origins, no parentSub
  encoding.writeVarUint(e, 1) // the parent is a root type, by name
  encoding.writeVarString(e, root)
  if (ref === 2) encoding.writeVarUint(e, 1) // one JSON value
  if (ref === 6) encoding.writeVarString(e, "bold")
  encoding.writeVarString(e, json)
  encoding.writeVarUint(e, 0) // empty delete set
  return encoding.toUint8Array(e)
}

const nested = (depth: number): string => "[".repeat(depth) + "]".repeat(depth)

describe("counting an update before decoding it", () => {
  test("a ContentAny nests up to the bound, not one level deeper (V1)", () => {
    expect(countV1Structs(deepAny(MAX_VALUE_DEPTH), 1e6)).toBe(1)
    expect(countV1Structs(deepAny(MAX_VALUE_DEPTH + 1), 1e6)).toMatch(TOO_DEEP)
    expect(countV1Structs(deepAny(100_000), 1e6)).toMatch(TOO_DEEP)
  })

  test("objects count like arrays", () => {
    let v: unknown = 1
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) v = { a: v }
    const ok = new Y.Doc()
    ok.getMap("m").set("k", v)
    expect(countV1Structs(Y.encodeStateAsUpdate(ok), 1e6)).toBe(1)
    const deeper = new Y.Doc()
    deeper.getMap("m").set("k", { a: v })
    expect(countV1Structs(Y.encodeStateAsUpdate(deeper), 1e6)).toMatch(TOO_DEEP)
  })

  test("JSON content, embeds and format values (V1: JSON text) nest up to the bound", () => {
    for (const ref of [2, 5, 6] as const) {
      expect(countV1Structs(jsonStruct(ref, nested(MAX_VALUE_DEPTH)), 1e6)).toBe(1)
      expect(countV1Structs(jsonStruct(ref, nested(MAX_VALUE_DEPTH + 1)), 1e6)).toMatch(TOO_DEEP)
      expect(countV1Structs(jsonStruct(ref, `{"a":${nested(5_000)}}`), 1e6)).toMatch(TOO_DEEP)
    }
  })

  test("brackets inside JSON strings are text, not nesting (escaped quotes included)", () => {
    const json = JSON.stringify(["\"[".repeat(2_000) + "{\\"])
    expect(countV1Structs(jsonStruct(2, json), 1e6)).toBe(1)
  })

  test("a V2 state with a deep ContentAny or JSON content is refused before decoding", () => {
    let v: unknown = 0
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) v = [v]
    const any = new Y.Doc()
    any.getMap("m").set("k", v)
    expect(countV2Structs(Y.encodeStateAsUpdateV2(any), 1e6)).toBe(1)
    any.getMap("m").set("k", [v])
    expect(countV2Structs(Y.encodeStateAsUpdateV2(any), 1e6)).toMatch(TOO_DEEP)
    // JSON content can only come from a peer (Yjs no longer writes it): 1,000 levels still encode.
    const json = new Y.Doc()
    Y.applyUpdate(json, jsonStruct(2, nested(1_000)))
    expect(countV2Structs(Y.encodeStateAsUpdateV2(json), 1e6)).toMatch(TOO_DEEP)
  })
})

describe("the hub's whole-document route (/yjs)", () => {
  const hostile: ReadonlyArray<readonly [string, Uint8Array]> = [
    ["5,000 nested arrays in a ContentAny", deepAny(5_000)],
    ["3,000 nested arrays in a ContentAny (applies in Node, near its stack's end)", deepAny(3_000)],
    ["5,000 levels of JSON content", jsonStruct(2, nested(5_000))],
    ["a format value of 5,000 levels", jsonStruct(6, nested(5_000))],
  ]

  test.each(hostile)("%s is refused where it enters, and the document stays servable", async (_, update) => {
    const engine = yjsDocEngine()
    const doc = engine.empty()
    const checked = engine.check(update)
    // Whatever the verdict, the document must still encode after it (before the bound, JSON
    // content was taken and every later encode threw).
    if (checked.ok) {
      const prepared = await engine.prepare!(update)
      if (prepared.ok) engine.apply(doc, [update])
    }
    expect(() => engine.encode(doc)).not.toThrow()
    expect(checked.ok ? "accepted" : `${checked.code}: ${checked.message}`).toMatch(new RegExp(`^update-malformed: ${TOO_DEEP.source}`))
  })

  test("a value at the bound is taken, and the document encodes and reloads", async () => {
    const engine = yjsDocEngine()
    const doc = engine.empty()
    const update = deepAny(MAX_VALUE_DEPTH)
    expect(engine.check(update).ok).toBe(true)
    expect((await engine.prepare!(update)).ok).toBe(true)
    expect((await engine.apply(doc, [update]))[0]).toBeInstanceOf(Uint8Array)
    const again = engine.load(engine.encode(doc))
    let v = again.getMap("m").get("k")
    let depth = 0
    for (; Array.isArray(v); depth++) v = v[0]
    expect(depth).toBe(MAX_VALUE_DEPTH)
  })
})

describe("a CRDT field", () => {
  test("a submitted update with a deep value is refused and the field is unchanged", () => {
    const field = yjsEngine<Y.Map<unknown>>("map").create()
    field.handle.set("kept", 1)
    const before = field.hash()
    for (const trusted of [false, true]) {
      const r = field.validate(deepAny(5_000), { clientId: "c1", trusted })
      expect(r.ok ? "accepted" : r.rejection.message).toMatch(TOO_DEEP)
    }
    expect(field.hash()).toBe(before)
    expect(field.handle.toJSON()).toEqual({ kept: 1 })
  })

  test("a stored or snapshot state with a deep value does not load", () => {
    const doc = new Y.Doc()
    let v: unknown = 0
    for (let i = 0; i <= MAX_VALUE_DEPTH; i++) v = [v]
    doc.getMap("m").set("k", v)
    const state = encodeCanonical(["y1", Y.encodeStateAsUpdateV2(doc), []])
    expect(() => yjsEngine("map").load(state)).toThrow(TOO_DEEP)
  })
})
