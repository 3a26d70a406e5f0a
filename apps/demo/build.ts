/**
 * Builds the demo's browser files in memory with esbuild (well under a second): the app
 * bundle, the service worker, the page, the styles, the manifest and the icon. The hub serves
 * them (pages.ts); nothing is written to disk and no dev server runs.
 *
 * Every file but the page and the service worker is served under a versioned URL (`?v=` the
 * build's hash; the app's chunks carry their own content hash in their names), so browsers may
 * cache them for good; a new build is a new service worker cache and the old one is dropped.
 * The app is an ES module split in two: what the board's first render needs, and a card's
 * description (Yjs), imported when one is first opened.
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import * as esbuild from "esbuild"

export interface Asset {
  readonly body: Buffer
  /** The body gzipped, when that is smaller. */
  readonly gzip: Buffer | undefined
  readonly type: string
  readonly etag: string
  /** Cache-Control. */
  readonly cache: string
  /**
   * Named by the build's `?v=` rather than its own: `cache` (immutable) holds only under the
   * current version's URL; under any other (none, an older build's) the content is the current
   * build's, so it must be checked again, never kept for a year as that URL's.
   */
  readonly versioned?: boolean
}

export interface DemoAssets {
  /** By URL path ("/", "/app.js", ...). */
  readonly files: ReadonlyMap<string, Asset>
  /** Hash of the build: the version in URLs and the service worker's cache name. */
  readonly version: string
  /**
   * The app's scripts by URL path: `first`, app.js and the chunks it imports statically
   * (transitively), which run before the board's first render; `later`, the chunks only an
   * `import()` reaches (a card's description). From esbuild's metafile.
   */
  readonly scripts: { readonly first: ReadonlyArray<string>; readonly later: ReadonlyArray<string> }
  readonly buildMs: number
}

const WEB = join(dirname(fileURLToPath(import.meta.url)), "web")

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".webmanifest": "application/manifest+json; charset=utf-8",
}

const IMMUTABLE = "public, max-age=31536000, immutable"
/** The page and the service worker are checked on every load (the worker falls back to its cache offline). */
const REVALIDATE = "no-cache"

const typeOf = (path: string): string => TYPES[path.slice(path.lastIndexOf("."))] ?? "application/octet-stream"

const versioned = (a: Asset): Asset => ({ ...a, versioned: true })

const asset = (path: string, body: Buffer | string, cache: string): Asset => {
  const bytes = typeof body === "string" ? Buffer.from(body) : body
  const zipped = gzipSync(bytes)
  return {
    body: bytes,
    gzip: zipped.length < bytes.length * 0.9 ? zipped : undefined,
    type: typeOf(path === "/" ? ".html" : path),
    etag: `"${createHash("sha256").update(bytes).digest("base64url").slice(0, 16)}"`,
    cache,
  }
}

const OPTIONS = {
  bundle: true,
  platform: "browser",
  target: ["es2022", "chrome100", "firefox100", "safari15"],
  minify: true,
  sourcemap: "external",
  write: false,
  // Inside the repository: a source map names its sources relative to this, and "/out" made
  // them climb to the checkout's absolute path ("../home/me/canon/apps/..."), public in app.js.map.
  outdir: join(WEB, "..", "..", "..", "out"),
  legalComments: "none",
  logLevel: "silent",
} satisfies esbuild.BuildOptions

/** One output file of a build: its name ("app.js", "chunk-X.js", "app.js.map") and its text. */
interface Output {
  readonly name: string
  readonly text: string
}

/** The app's output files, and its scripts by when they load (DemoAssets.scripts, by file name). */
interface AppBuild {
  readonly outputs: ReadonlyArray<Output>
  readonly first: ReadonlyArray<string>
  readonly later: ReadonlyArray<string>
}

/**
 * The app: an ES module (`app.js`) plus the chunks it imports on demand (`chunk-<hash>.js`:
 * the card description and Yjs, web/description.ts), each with its source map. Chunk names
 * carry their content hash, so their URLs need no `?v=`.
 */
const bundleApp = async (): Promise<AppBuild> => {
  const result = await esbuild.build({
    ...OPTIONS,
    entryPoints: { app: join(WEB, "main.ts") },
    format: "esm",
    splitting: true,
    chunkNames: "chunk-[hash]",
    metafile: true,
    define: { "process.env.NODE_ENV": '"production"' },
  })
  const base = (path: string) => path.slice(path.lastIndexOf("/") + 1)
  const meta = new Map(Object.entries(result.metafile.outputs).map(([path, o]) => [base(path), o]))
  const first = ["app.js"]
  for (let i = 0; i < first.length; i++) {
    for (const imp of meta.get(first[i]!)!.imports) if (imp.kind === "import-statement" && !first.includes(base(imp.path))) first.push(base(imp.path))
  }
  return {
    outputs: result.outputFiles.map((f) => ({ name: base(f.path), text: f.text })),
    first,
    later: [...meta.keys()].filter((name) => name.endsWith(".js") && !first.includes(name)),
  }
}

/** The service worker: one classic script. */
const bundleWorker = async (define: Record<string, string>): Promise<string> => {
  const result = await esbuild.build({
    ...OPTIONS,
    entryPoints: [join(WEB, "sw.ts")],
    format: "iife",
    sourcemap: false,
    define: { "process.env.NODE_ENV": '"production"', ...define },
  })
  return result.outputFiles.find((f) => f.path.endsWith(".js"))!.text
}

let cached: Promise<DemoAssets> | undefined

/** Builds once per process (the sources do not change while the hub runs). */
export const buildDemo = (): Promise<DemoAssets> => (cached ??= build())

const build = async (): Promise<DemoAssets> => {
  const started = performance.now()
  const { outputs, first, later } = await bundleApp()
  const app = outputs.find((o) => o.name === "app.js")!
  const chunks = outputs.filter((o) => o.name.startsWith("chunk-"))
  const css = readFileSync(join(WEB, "styles.css"), "utf8")
  const icon = readFileSync(join(WEB, "icon.svg"), "utf8")
  const manifest = readFileSync(join(WEB, "manifest.webmanifest"), "utf8")
  const hash = createHash("sha256").update(css).update(icon).update(manifest)
  for (const o of outputs) hash.update(o.name).update(o.text)
  const version = hash.digest("hex").slice(0, 12)
  const v = `?v=${version}`
  // The chunks app.js imports are fetched beside it, not after it has been parsed.
  const html = readFileSync(join(WEB, "index.html"), "utf8").replaceAll("{{v}}", v)
    .replace("{{preload}}", first.slice(1).map((name) => `<link rel="modulepreload" href="/${name}">`).join("\n"))
  // What the service worker caches on install: with it the page loads with no network, and a
  // description (a chunk loaded on demand) opens with no network too.
  const shell = ["/", `/app.js${v}`, ...[...first.slice(1), ...later].map((name) => `/${name}`), `/styles.css${v}`, `/icon.svg${v}`, `/manifest.webmanifest${v}`]
  const sw = await bundleWorker({ __CANON_VERSION__: JSON.stringify(version), __CANON_SHELL__: JSON.stringify(shell) })
  const appMap = outputs.find((o) => o.name === "app.js.map")!
  const files = new Map<string, Asset>([
    ["/", asset("/", html, REVALIDATE)],
    ["/app.js", versioned(asset("/app.js", `${app.text.replace(/\/\/# sourceMappingURL=.*\n?$/, "")}//# sourceMappingURL=/app.js.map${v}\n`, IMMUTABLE))],
    ["/app.js.map", versioned(asset("/app.js.map", appMap.text, IMMUTABLE))],
    // Chunks and their maps: named by content hash, so immutable as they are.
    ...chunks.map((c): [string, Asset] => [`/${c.name}`, asset(`/${c.name}`, c.text, IMMUTABLE)]),
    ["/styles.css", versioned(asset("/styles.css", css, IMMUTABLE))],
    ["/icon.svg", versioned(asset("/icon.svg", icon, IMMUTABLE))],
    ["/manifest.webmanifest", versioned(asset("/manifest.webmanifest", manifest, IMMUTABLE))],
    ["/sw.js", asset("/sw.js", sw.replace(/\/\/# sourceMappingURL=.*\n?$/, ""), REVALIDATE)],
  ])
  return { files, version, scripts: { first: first.map((n) => `/${n}`), later: later.map((n) => `/${n}`) }, buildMs: Math.round(performance.now() - started) }
}
