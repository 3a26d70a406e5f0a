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
  /** Files (repository-relative) rewritten whole by `transform` in the "without" build. */
  readonly transform?: { readonly files: ReadonlyArray<string>; readonly rewrite: (source: string) => string }
}

/**
 * TypeScript `private` members as `#private` ones: esbuild shortens #names when minifying, but
 * never property names. (Textual: members declared `private` at the class's top level and
 * used as `this.x`; a member read by name elsewhere would break, so the measure is an upper
 * bound until the change is made and tested.)
 */
const hashPrivate = (source: string): string => {
  let s = source
  for (const [, name] of s.matchAll(/^ {2}private (?:readonly )?([A-Za-z_]\w*)/gm)) {
    s = s.replace(new RegExp(`^( {2})private (readonly )?${name}\\b`, "gm"), (_m, indent: string, ro: string | undefined) => `${indent}${ro ?? ""}#${name}`)
    s = s.replace(new RegExp(`\\b(this|self)\\.${name}\\b`, "g"), `$1.#${name}`)
  }
  return s
}

/** A plain Error with the tag and fields, as Data.TaggedError makes, minus Effect's Equal/Hash/Yieldable. */
const PLAIN_TAGGED = `const Data = { TaggedError: (tag) => class extends Error { constructor(a) { super(a.message); Object.assign(this, a); this._tag = tag } } }`

const CULPRITS: ReadonlyArray<Culprit> = [
  {
    name: "Data.TaggedError for CanonError, CommandRejected (core/errors.ts) and DecodeError (core/protocol/codec-shared.ts)",
    entry: ENTRY.core,
    edits: [
      { file: "core/errors.ts", from: `import * as Data from "effect/Data"`, to: PLAIN_TAGGED },
      { file: "core/protocol/codec-shared.ts", from: `import * as Data from "effect/Data"`, to: PLAIN_TAGGED },
    ],
  },
  {
    name: "named private members of the replica's classes (Doc, ReplicaState, SnapshotReceiver, ReplicaStore): as #private",
    entry: ENTRY.core,
    transform: { files: ["core/replica/doc.ts", "core/replica/replica-state.ts", "core/replica/snapshot-receiver.ts", "core/store/replica-store.ts"], rewrite: hashPrivate },
  },
  {
    name: "the `buffer` polyfill level-transcoder requires in level's browser build (bundle (b); the demo too)",
    entry: ENTRY.coreLevel,
    alias: EVENTS_SHIM,
    without: { buffer: `${ROOT}bench/bundle-entries/no-buffer.ts` },
  },
]

const swap = (edits: ReadonlyArray<Edit>, missing: string[], transform?: Culprit["transform"]): esbuild.Plugin => ({
  name: "swap-source",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const mine = edits.filter((e) => args.path === `${ROOT}${e.file}`)
      const rewrite = transform !== undefined && transform.files.some((f) => args.path === `${ROOT}${f}`)
      if (mine.length === 0 && !rewrite) return undefined
      let source = readFileSync(args.path, "utf8")
      if (rewrite) source = transform!.rewrite(source)
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
    const without = await measureBundle(c.entry, { alias: { ...c.alias, ...c.without }, plugins: [swap(c.edits ?? [], missing, c.transform)] })
    console.log(`${c.name}\n  with: ${withIt.gzipped} B gzipped (${withIt.minified} B minified); without: ${without.gzipped} B (${without.minified} B)` +
      `\n  cost: ${withIt.gzipped - without.gzipped} B gzipped, ${withIt.minified - without.minified} B minified` +
      (missing.length > 0 ? `\n  gone: source not found (${missing.join("; ")}), so the figures compare the same code` : ""))
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
