/**
 * `npx tsx bench/bundle-culprits.ts`: what each suspected culprit costs bundle (a) (or (b)),
 * measured by bundling the same entry with and without it. "Without" swaps the source at
 * bundle time (an esbuild plugin; no file changes), so the figure is the most a change
 * could save; the change itself must keep the behaviour (see the notes printed).
 * A culprit whose source is no longer there is reported as gone.
 */
import { readFileSync } from "node:fs"
import type * as esbuild from "esbuild"
import { ENTRY, EVENTS_SHIM, measureBundle, ROOT } from "./bundle-measure.js"

interface Edit {
  /** Repository-relative file. */
  readonly file: string
  readonly from: string
  readonly to: string
}

interface Culprit {
  readonly name: string
  readonly entry: string
  readonly alias?: Record<string, string>
  readonly edits?: ReadonlyArray<Edit>
  /** Extra aliases for the "without" build. */
  readonly without?: Record<string, string>
  /** Extra esbuild plugins for the "without" build (for a dependency's source, which `edits` does not reach). */
  readonly withoutPlugins?: ReadonlyArray<esbuild.Plugin>
}

/**
 * effect/Schema's six `instanceOf(globalThis.X, ...)` schemas (RegExp, URL, File, URLSearchParams,
 * Uint8Array, Error), each a module-level constant marked pure, given the global read once above
 * them instead. esbuild keeps a pure call whose argument reads a property of `globalThis` (it
 * cannot prove the read free of side effects; evanw/esbuild#2279), and with it everything the
 * schema's methods reach: File's pins Base64 and Effect's promise runtime. This is the floor
 * under (a) (row 1e), not Canon's code: what an upstream change in effect would give. (Not an
 * esbuild `define` of `globalThis.File` to `File`: Schema.js exports its own File, URL, RegExp,
 * Uint8Array and Error, and the defined name binds to those: the bundle throws at load.)
 */
const SCHEMA_GLOBALS = ["RegExp", "URL", "File", "URLSearchParams", "Uint8Array", "Error"]
const EFFECT_SCHEMA_GLOBALS: esbuild.Plugin = {
  name: "effect-schema-globals",
  setup(build) {
    build.onLoad({ filter: /[\\/]effect[\\/]dist[\\/]Schema\.js$/ }, (args) => ({
      contents:
        SCHEMA_GLOBALS.map((g) => `const globalThis_${g} = globalThis.${g};`).join("") +
        SCHEMA_GLOBALS.reduce((s, g) => s.replace(`instanceOf(globalThis.${g},`, `instanceOf(globalThis_${g},`), readFileSync(args.path, "utf8")),
      loader: "js",
    }))
  },
}

/** A plain Error with the tag and fields, as Data.TaggedError makes, minus Effect's Equal/Hash/Yieldable. */
const PLAIN_TAGGED = `const Data = { TaggedError: (tag) => class extends Error { constructor(a) { super(a.message); Object.assign(this, a); this._tag = tag } } }`

/**
 * Parts of the replica that bundle (a) carries but does not use: what the 45 kB goal could at
 * most gain from making them optional. Each "without" disables the part in place. (The replica
 * store, compat mode and the CRDT plumbing already come with what needs them: a storage, a
 * version history, a machine's fields.)
 */
const OPTIONAL: ReadonlyArray<{ readonly name: string; readonly edits: ReadonlyArray<Edit> }> = [
  {
    name: "presence (Doc.setPresence)",
    edits: [{ file: "core/replica/doc.ts", from: "setPresence(state: unknown): void {", to: "setPresence(state: unknown): void { return" }],
  },
  {
    name: "protocol 1 submits, for a hub that speaks only protocol 1",
    edits: [{ file: "core/replica/doc.ts", from: "this.#protocol >= 2\n", to: "true\n" }],
  },
]

const CULPRITS: ReadonlyArray<Culprit> = [
  {
    name: "effect/Schema's instanceOf(globalThis.X) schemas, kept by esbuild though marked pure (effect's floor, row 1e, not Canon's code)",
    entry: ENTRY.core,
    withoutPlugins: [EFFECT_SCHEMA_GLOBALS],
  },
  {
    name: "the same, under the floor alone (bench/bundle-entries/schema-floor.ts)",
    entry: ENTRY.schemaFloor,
    withoutPlugins: [EFFECT_SCHEMA_GLOBALS],
  },
  {
    name: "Data.TaggedError for CanonError, CommandRejected (core/errors.ts) and DecodeError (core/protocol/codec-shared.ts)",
    entry: ENTRY.core,
    edits: [
      { file: "core/errors.ts", from: `import * as Data from "effect/Data"`, to: PLAIN_TAGGED },
      { file: "core/protocol/codec-shared.ts", from: `import * as Data from "effect/Data"`, to: PLAIN_TAGGED },
    ],
  },
  ...OPTIONAL.map((o) => ({ name: o.name, entry: ENTRY.core, edits: o.edits })),
  {
    name: "all of the above at once: (a) with no optional part of the replica (the best a smaller client could do without touching its core)",
    entry: ENTRY.core,
    edits: OPTIONAL.flatMap((o) => o.edits),
  },
  {
    name: "protocol 2 (compact arguments by schema, channels, elided own entries): what a browser client that spoke protocol 1 only would leave out (a change of the wire, not a trim)",
    entry: ENTRY.core,
    edits: [
      { file: "core/protocol/codec-shared.ts", from: "{ min: 1, max: 2 }", to: "{ min: 1, max: 1 }" },
      { file: "core/protocol/codec-client.ts", from: "const compact = compactFor(m)", to: "const compact = false" },
      { file: "core/protocol/codec-client.ts", from: "[Type.ENTRIES2, (r) => readEntriesBody(r, readChannel(r), true)],", to: "" },
      { file: "core/protocol/codec-client.ts", from: "[Type.RESULTS2, (r) => ({ ...readResultsBody(r, readChannel(r)), compact: true })],", to: "" },
      { file: "core/replica/doc.ts", from: "const compact = this.#protocol >= 2", to: "const compact = false" },
      { file: "core/replica/doc.ts", from: "return (p.compact ??= this.#codecOf(p.name).encode(p.encoded))", to: "throw 0" },
      { file: "core/replica/doc.ts", from: "return commandArgsCodec(this.#sessionMachine.commands, name)", to: "throw 0" },
      { file: "core/replica/doc.ts", from: "msg.compact === true ? this.#expandEntries(msg.entries, msg.elide) : msg.entries", to: "msg.entries" },
    ],
  },
  {
    name: "the `buffer` polyfill level-transcoder requires in level's browser build (bundle (b); the demo too)",
    entry: ENTRY.coreLevel,
    alias: EVENTS_SHIM,
    without: { buffer: `${ROOT}bench/bundle-entries/no-buffer.ts` },
  },
]

const swap = (edits: ReadonlyArray<Edit>, missing: string[]): esbuild.Plugin => ({
  name: "swap-source",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const mine = edits.filter((e) => args.path === `${ROOT}${e.file}`)
      if (mine.length === 0) return undefined
      let source = readFileSync(args.path, "utf8")
      for (const e of mine) {
        if (source.includes(e.from)) source = source.replace(e.from, e.to)
        else missing.push(`${e.file}: ${e.from.slice(0, 60)}`)
      }
      return { contents: source, loader: "ts" }
    })
  },
})

const main = async (): Promise<void> => {
  for (const c of CULPRITS) {
    const missing: string[] = []
    const withIt = await measureBundle(c.entry, { alias: c.alias ?? {} })
    const without = await measureBundle(c.entry, { alias: { ...c.alias, ...c.without }, plugins: [swap(c.edits ?? [], missing), ...(c.withoutPlugins ?? [])] })
    console.log(`${c.name}\n  with: ${withIt.gzipped} B gzipped (${withIt.minified} B minified); without: ${without.gzipped} B (${without.minified} B)` +
      `\n  cost: ${withIt.gzipped - without.gzipped} B gzipped, ${withIt.minified - without.minified} B minified` +
      (missing.length > 0 ? `\n  gone: source not found (${missing.join("; ")}), so the figures compare the same code` : ""))
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
