/**
 * Command arguments encoded by their schema, for protocol v2: field order comes from the
 * schema, so no field names travel; literals and enum members are an index or nothing;
 * optional fields cost one bit. Both peers build the same codec from the same schema (the
 * handshake checked the machine's fingerprint), so this is a compact, not a self-describing,
 * form. Whatever the schema does not pin down (`Unknown`, declarations, symbols) is written as
 * one canonical value, and a value that does not fit the schema's shape at all is written
 * whole in canonical form: encoding never fails on a shape, it only gets less compact.
 *
 *     args    = byte form, then form 0: node(encoded AST of the schema)
 *                                 form 1: val (canonical value)
 *     String        str
 *     Number        val (canonical number: one tag byte, varint or float64)
 *     Boolean       byte 0 | 1
 *     Null, Undefined, Void, Literal    nothing
 *     Enum          u index of the member
 *     (a literal or member matches by SameValue: -0 is not 0, and travels as a value)
 *     Union         u index of the first member whose shape the value has, then that member
 *     Objects       bitmap of the optional properties present (ceil(k/8) bytes, property order),
 *                   each present property's node in declaration order, then, with index
 *                   signatures, u n and n x (str key, node) for the other keys
 *     Arrays        each element's node, then, with a rest type, u n and n rest nodes
 *     Suspend       the node it stands for
 *     anything else val
 *
 * Decoding is strict and bounded: every count is checked against the bytes left, nesting is
 * bounded, and the input must be consumed exactly. Array elements and index keys of a whole
 * decode share one budget, the input's length + FREE_ITEMS (an element may take no bytes: a
 * Null, a Literal, an empty Struct), so nesting arrays cannot multiply what a few bytes yield;
 * the encoder writes a value that would go over it whole (form 1) instead. It yields the
 * encoded (wire) form of the arguments, which the receiver still decodes and validates with the schema itself.
 *
 * Encoding is bounded too. A union tries its members in turn, and the work of a member that
 * fails deep inside is lost, which nesting multiplies (a recursive union whose members differ
 * after their recursive field: 2^depth). The encoder counts its work (`spent`): past 4096 + 8
 * per byte written, when a member fails, it gives the compact form up and writes the value
 * whole (form 1), which every peer reads. Its work is linear in the arguments' bytes.
 */
import * as SchemaAST from "effect/SchemaAST"
import { ByteReader, ByteWriter, decodeFailed } from "../bytes.js"
import { encodeCanonical, hasOwn, hasPlainPrototype, readValue, setOwn, writeValue } from "../canonical.js"
import { MAX_ARGS_DEPTH } from "../limits.js"

export interface ArgsCodec {
  /** The compact form of a command's encoded arguments. */
  encode(args: unknown): Uint8Array
  /**
   * Back to the encoded arguments; a malformed input throws a `decode-failed` CanonError.
   * `at`: the depth values are read at (a replica's entries: ENTRY_ARGS_READ_DEPTH).
   */
  decode(bytes: Uint8Array, at?: number): unknown
}

/** Thrown inside the encoder when the value leaves the schema's shape: encode it whole instead. */
class Misfit {}
const MISFIT = new Misfit()

/** The arguments' first byte (an enum: esbuild writes the numbers where they are used). */
enum Form {
  SCHEMA = 0,
  VALUE = 1,
}

/**
 * Array elements and index keys one decode may yield beyond one per byte of input: the
 * allowance for elements that take no bytes, shared by every array of the arguments. Small,
 * because it is per command and a submit carries up to 1000 of them: at 65,536, 7 KB of
 * commands of 4 bytes each decoded into 65 M literals on the hub (40 s, 1 GB). An app's
 * longer run of such elements travels in the value form, a byte or more each.
 */
export const FREE_ITEMS = 64

/** Array elements and index keys met so far in this encode, or left to this decode. */
let items = 0

/**
 * The work of this encode so far: nodes visited, object keys scanned, bytes written and taken
 * back (a union's member that did not fit). Exported for the tests, which read it after an
 * encode (a decode counts its nodes too, unchecked).
 */
export let spent = 0

type Ast = SchemaAST.AST

/** Whether this walk encodes (into `w`) or decodes (from `r`): one walk of the schema does both. */
let encoding = false
let w: ByteWriter
let r: ByteReader
/** Decoding: the depth the arguments' values are read at (ArgsCodec.decode's `at`). */
let readAt = 0

/** What the schema cannot carry: encoding, the value goes whole (a misfit); decoding, the input is malformed. */
const unfit = (): never => {
  if (encoding) throw MISFIT
  // Form 0 of a schema the encoder writes as a value (form 1) only.
  return decodeFailed("This schema has no compact form.")
}

/**
 * The count `n` of array items or index keys that follow (encoding: written; decoding: read),
 * counted against the decode's budget (an item may take no bytes: a Null, a Literal).
 */
const more = (n: number): number => {
  if (encoding) {
    w.varint(n)
    items += n
    return n
  }
  n = r.varint()
  if (n > items) decodeFailed(`${n} items are over what the arguments may hold.`)
  items -= n
  return n
}

/** Encodes `v` by `ast` (returns nothing), or decodes the value `ast` describes (`v` unused). */
const node = (ast: Ast, v: unknown, depth: number): unknown => {
  spent++
  if (depth > MAX_ARGS_DEPTH) {
    if (encoding) throw MISFIT
    decodeFailed(`Arguments nest deeper than ${MAX_ARGS_DEPTH}.`)
  }
  switch (ast._tag) {
    case "String": case "TemplateLiteral":
      if (!encoding) return r.string()
      if (typeof v !== "string") throw MISFIT
      w.string(v)
      return
    case "Number":
      if (!encoding) {
        const n = readValue(r, readAt + depth)
        if (typeof n !== "number") decodeFailed("Not a number.")
        return n
      }
      if (typeof v !== "number") throw MISFIT
      writeValue(w, v)
      return
    case "Boolean": {
      if (!encoding) {
        const b = r.byte()
        if (b > 1) decodeFailed(`A boolean byte is ${b}.`)
        return b === 1
      }
      if (typeof v !== "boolean") throw MISFIT
      w.byte(v ? 1 : 0)
      return
    }
    case "Null":
      if (encoding && v !== null) throw MISFIT
      return null
    case "Undefined": case "Void":
      if (encoding && v !== undefined) throw MISFIT
      return undefined
    // Matched by SameValue, as the canonical form tells values apart: -0 passes a schema's
    // literal 0 (===) but is not that literal; written as nothing, it came back as +0.
    case "Literal":
      if (encoding && !Object.is(v, ast.literal)) throw MISFIT
      return ast.literal
    case "Enum": {
      if (!encoding) {
        const i = r.varint()
        const e = ast.enums[i]
        if (e === undefined) decodeFailed(`Enum member ${i} does not exist.`)
        return e![1]
      }
      const i = ast.enums.findIndex(([, e]) => Object.is(e, v))
      if (i < 0) throw MISFIT
      w.varint(i)
      return
    }
    case "Union": {
      if (!encoding) {
        const i = r.varint()
        const t = ast.types[i]
        if (t === undefined) decodeFailed(`Union member ${i} does not exist.`)
        return node(t!, v, depth + 1)
      }
      // The first member whose shape the value has: the first that encodes it without a misfit.
      const start = w.pos
      const counted = items
      for (let i = 0; i < ast.types.length; i++) {
        try {
          w.varint(i)
          node(ast.types[i]!, v, depth + 1)
          return
        } catch (e) {
          // What the member wrote is taken back: work lost. Past 4096 + 8 per byte written, the
          // misfit goes up through every union (each is past it too: work only grows) to
          // encode(), which writes the value whole.
          if (e !== MISFIT || (spent += w.pos - start) > 4096 + 8 * w.pos) throw e
          w.pos = start
          items = counted
        }
      }
      throw MISFIT
    }
    case "Suspend":
      return node(ast.thunk(), v, depth + 1)
    case "Arrays": {
      const { elements, rest } = ast
      const n = elements.length
      const a = v as unknown[]
      if (rest.length > 1 || (encoding && !(Array.isArray(a) && a.length >= n && (rest.length === 1 || a.length === n)))) unfit()
      const out: unknown[] = elements.map((e, i) => node(e, a?.[i], depth + 1))
      if (rest.length === 1) {
        const k = more(encoding ? a.length - n : 0)
        for (let i = 0; i < k; i++) out.push(node(rest[0]!, a?.[n + i], depth + 1))
      }
      return out
    }
    case "Objects": {
      const o = v as Record<string, unknown>
      const props = ast.propertySignatures
      const index = ast.indexSignatures[0]
      if (ast.indexSignatures.length > 1 || props.some((p) => typeof p.name !== "string") || (encoding && !(typeof o === "object" && o !== null && !Array.isArray(o) && !ArrayBuffer.isView(o) && hasPlainPrototype(o)))) unfit()
      const own = (k: string): boolean => hasOwn.call(o, k) && o[k] !== undefined
      // The presence bitmap of the optional properties, in declaration order.
      const optional = props.filter((p) => SchemaAST.isOptional(p.type))
      const present = new Set<PropertyKey>()
      for (let i = 0; i < optional.length; i += 8) {
        let bits = 0
        if (encoding) {
          for (let k = 0; k < 8 && i + k < optional.length; k++) if (own(optional[i + k]!.name as string)) bits |= 1 << k
          w.byte(bits)
        } else {
          bits = r.byte()
          // Bits past the last optional property (a byte shifted by 8 is 0).
          if (bits >> Math.min(8, optional.length - i) !== 0) decodeFailed("Unknown optional fields.")
        }
        for (let k = 0; k < 8 && i + k < optional.length; k++) if (bits & (1 << k)) present.add(optional[i + k]!.name)
      }
      const out: Record<string, unknown> = {}
      for (const p of props) {
        const name = p.name as string
        // An optional property when its bit is set; a required one always (missing: a misfit).
        if (SchemaAST.isOptional(p.type) ? present.has(name) : !encoding || own(name) || unfit()) setOwn(out, name, node(p.type, o?.[name], depth + 1))
      }
      let keys: string[] = []
      if (encoding) {
        const declared = new Set(props.map((p) => p.name))
        keys = Object.keys(o).filter((k) => (spent++, !declared.has(k) && o[k] !== undefined))
        // Keys the schema does not know: send the value whole.
        if (index === undefined && keys.length > 0) throw MISFIT
      }
      if (index !== undefined) {
        const n = more(keys.length)
        if (!encoding && n > r.remaining) decodeFailed(`${n} keys cannot fit in ${r.remaining} bytes.`)
        for (let i = 0; i < n; i++) {
          let k = keys[i]!
          if (encoding) w.string(k)
          else if (hasOwn.call(out, (k = r.string()))) decodeFailed(`Key "${k}" twice.`)
          setOwn(out, k, node(index.type, o?.[k], depth + 1))
        }
      }
      return out
    }
    default:
      if (!encoding) return readValue(r, readAt + depth)
      writeValue(w, v, depth)
  }
}

const writer = new ByteWriter(256)
const codecs = new WeakMap<Ast, ArgsCodec>()

/** The compact codec of a schema's encoded side, built once per schema. */
export const argsCodecOf = (ast: Ast): ArgsCodec => {
  let c = codecs.get(ast)
  if (c === undefined) codecs.set(ast, (c = argsCodec(ast)))
  return c
}

/**
 * The codec of a machine's command `name`. A command it does not have (own keys only: a name
 * from the wire may be "constructor") has its arguments as one canonical value, which the
 * compact codec always accepts.
 */
export const commandArgsCodec = (commands: Readonly<Record<string, unknown>>, name: string): ArgsCodec =>
  argsCodecOf(Object.hasOwn(commands, name) ? (commands[name] as { readonly args: { readonly ast: Ast } }).args.ast : SchemaAST.unknown)

/** Compact arguments past this many bytes are checked against their value form (see encode). */
export const LARGE_ARGS = 64 << 10

/** The compact codec of a schema's encoded side. */
export const argsCodec = (ast: Ast): ArgsCodec => {
  const wire = SchemaAST.toEncoded(ast)
  return {
    encode(args: unknown): Uint8Array {
      w = writer
      w.reset()
      try {
        w.byte(Form.SCHEMA)
        items = spent = 0
        encoding = true
        node(wire, args, 0)
        // More items than the decoder's budget for these bytes: the value form has a byte each.
        if (items > w.pos + FREE_ITEMS) throw MISFIT
        // Large and larger than the value form (a union adds its index to each value): the
        // value form, so a command that fits a frame canonically fits it compact too.
        if (w.pos > LARGE_ARGS && w.pos > encodeCanonical(args).length + 1) throw MISFIT
      } catch (e) {
        if (e !== MISFIT) throw e
        w.reset()
        w.byte(Form.VALUE)
        writeValue(w, args)
      }
      return w.finish()
    },
    decode(bytes: Uint8Array, at = 0): unknown {
      r = new ByteReader(bytes)
      readAt = at
      const form = r.byte()
      let v: unknown
      if (form === Form.SCHEMA) {
        items = bytes.length + FREE_ITEMS
        encoding = false
        v = node(wire, undefined, 0)
      }
      else if (form === Form.VALUE) v = readValue(r, at)
      else decodeFailed(`Unknown arguments form ${form}.`)
      if (!r.done()) decodeFailed(`${r.remaining} trailing bytes.`)
      return v
    },
  }
}
