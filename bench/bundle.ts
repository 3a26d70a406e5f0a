/**
 * The `bundle` suite: what an app using Canon ships to the browser, beside Yjs and Automerge
 * bundled the same way (bench/bundle-measure.ts: esbuild minify, ESM, platform browser,
 * tree shaking; gzip -9), and how fast the demo shows a board from IndexedDB.
 *
 * (a) core + browser WebSocket client + a one-command machine (bench/bundle-entries/core.ts)
 * (b) (a) + canon/level, IndexedDB through level's browser build (core-level.ts); (b') the
 * same through canon/indexeddb, the browser's API with no dependency (core-indexeddb.ts)
 * (c) the demo app's scripts as apps/demo/build.ts bundles them for `npm start`: what runs
 * before the first render (app.js and the chunks it imports), and what loads on demand
 * yjs + y-websocket's WebsocketProvider; @automerge/automerge + automerge-repo + its
 * WebSocket client adapter (script + the .wasm it fetches); and (a) written with the effect
 * barrel, whose difference from (a) is what the barrel costs; and (a)'s command schema alone,
 * used to decode, without Canon (schema-floor.ts): what effect weighs under (a) whatever Canon
 * does, so (a) minus it is Canon's own weight.
 *
 * kB = 1000 bytes. Sizes are exact (one sample each); the first-render times are medians
 * over runs, measured in Chromium (bench/bundle-browser.ts; skipped with --quick: each cold
 * run launches a browser). What a suspected culprit costs (a) or (b): `npx tsx
 * bench/bundle-culprits.ts`.
 */
import { buildDemo } from "../apps/demo/build.js"
import { check, figure, figureLog, formatNumber, verdict, type Suite } from "./harness.js"
import { chromiumAvailable, CHROMIUM, measureFirstRender } from "./bundle-browser.js"
import { AUTOMERGE_WASM, byPackage, CORE_LIMIT_BYTES, DEMO_BEFORE_BYTES, ENTRY, EVENTS_SHIM, fileSize, gzipSize, measureBundle, type BundleSize } from "./bundle-measure.js"

const FIRST_RENDER = { runs: 5, cards: 200 }

const kB = (bytes: number): number => bytes / 1000
const bytes = (n: number): string => `${n.toLocaleString("en-US")} bytes`

const has = (b: BundleSize, fragment: string): boolean => b.inputs.some((i) => i.path.includes(fragment))

export const suite: Suite = {
  name: "bundle",
  title: "browser bundle sizes (esbuild minify, ESM, browser; gzip -9) and the demo's first render from IndexedDB",
  async run(ctx) {
    const { figures, add } = figureLog(ctx)
    const [a, b, bIdb, barrel, yjs, automerge, floor] = await Promise.all([
      measureBundle(ENTRY.core),
      measureBundle(ENTRY.coreLevel, { alias: EVENTS_SHIM }),
      measureBundle(ENTRY.coreIndexedDb),
      measureBundle(ENTRY.coreBarrel),
      measureBundle(ENTRY.yjs),
      measureBundle(ENTRY.automerge),
      measureBundle(ENTRY.schemaFloor),
    ])
    check(has(a, "core/replica/client.ts") && has(a, "adapters/ws/client-browser.ts") && has(a, "effect/dist/Schema"), "(a) bundles the client, the browser transport and effect's Schema")
    check(has(b, "adapters/level/storage.ts") && has(b, "browser-level/"), "(b) bundles level's browser build")
    check(has(bIdb, "adapters/indexeddb/storage.ts") && !has(bIdb, "abstract-level/"), "(b') bundles canon/indexeddb and no level")
    check(has(yjs, "yjs/dist") && has(yjs, "y-websocket/"), "the Yjs bundle holds yjs and y-websocket")
    check(has(automerge, "automerge-repo/") && has(automerge, "automerge-repo-network-websocket/"), "the Automerge bundle holds the repo and its adapter")
    const wasm = fileSize(AUTOMERGE_WASM)
    const demo = await buildDemo()
    check(demo.files.has("/app.js"), "the demo build has /app.js")
    const { first, later } = demo.scripts
    const firstGz = first.reduce((sum, p) => sum + gzipSize(demo.files.get(p)!.body), 0)
    const firstMin = first.reduce((sum, p) => sum + demo.files.get(p)!.body.length, 0)
    const laterGz = later.reduce((sum, p) => sum + gzipSize(demo.files.get(p)!.body), 0)
    check(later.length > 0, "the demo loads its description chunk on demand")
    const shell = [...demo.files].filter(([path]) => !path.endsWith(".map"))
    const shellGz = shell.reduce((sum, [, f]) => sum + gzipSize(f.body), 0)

    ctx.log(`(a) largest inputs (minified bytes in the output): ${a.inputs.slice(0, 15).map((i) => `${i.path.replace(/^node_modules\//, "")} ${i.bytes}`).join(", ")}`)
    ctx.log(`(a) by package (minified): ${byPackage(a.inputs).map((p) => `${p.pkg} ${p.bytes}`).join(", ")}`)
    ctx.log(`(b) by package (minified): ${byPackage(b.inputs).map((p) => `${p.pkg} ${p.bytes}`).join(", ")}`)
    const effectOfA = byPackage(a.inputs).find((p) => p.pkg === "effect")?.bytes ?? 0

    add(figure("a.gzip", "1a. (a) core + ws client + 1-command machine: gzipped", "kB", [kB(a.gzipped)], {
      goal: { op: "<=", value: kB(CORE_LIMIT_BYTES) },
      note: `${bytes(a.gzipped)}; bench/bundle-entries/core.ts (the README's way: \`import * as Schema from "effect/Schema"\`)`,
    }))
    add(figure("a.min", "1b. (a): minified", "kB", [kB(a.minified)], { note: bytes(a.minified) }))
    add(figure("a.effect", "1c. (a): of which effect, minified", "kB", [kB(effectOfA)], { note: "bytes of effect's modules in the minified output (esbuild metafile); the rest is Canon" }))
    add(figure("a.per-yjs", "1d. (a) / yjs + y-websocket, gzipped", "x", [a.gzipped / yjs.gzipped], { goal: { op: "<=", value: 1.5 } }))
    add(figure("a.floor", "1e. (a)'s schema alone, no Canon (effect's floor): gzipped", "kB", [kB(floor.gzipped)], {
      note: `${bytes(floor.gzipped)}, ${bytes(floor.minified)} minified; bench/bundle-entries/schema-floor.ts: Schema.Struct + decodeUnknownResult pin effect's parser and fiber runtime`,
    }))
    add(figure("a.canon", "1f. (a) minus the floor: Canon's own weight, gzipped", "kB", [kB(a.gzipped - floor.gzipped)], {
      note: `1a - 1e: ${bytes(a.gzipped - floor.gzipped)} gzipped, ${bytes(a.minified - floor.minified)} minified`,
    }))
    add(figure("b.gzip", "2a. (b) (a) + canon/level (IndexedDB): gzipped", "kB", [kB(b.gzipped)], {
      note: `${bytes(b.gzipped)}; bench/bundle-entries/core-level.ts; \`events\` mapped to apps/demo/web/shims/events.ts`,
    }))
    add(figure("b.min", "2b. (b): minified", "kB", [kB(b.minified)], { note: bytes(b.minified) }))
    add(figure("b-idb.gzip", "2c. (b') (a) + canon/indexeddb (IndexedDB, no dependency): gzipped", "kB", [kB(bIdb.gzipped)], {
      note: `${bytes(bIdb.gzipped)}; bench/bundle-entries/core-indexeddb.ts; 2a - 2c = ${bytes(b.gzipped - bIdb.gzipped)}: what level's browser build adds`,
    }))
    add(figure("b-idb.min", "2d. (b'): minified", "kB", [kB(bIdb.minified)], { note: bytes(bIdb.minified) }))
    add(figure("c.gzip", "3a. (c) demo, scripts before the first render: gzipped", "kB", [kB(firstGz)], {
      note: `${bytes(firstGz)}; ${first.join(" + ")}, as apps/demo/build.ts bundles them for \`npm start\` (ESM with splitting, es2022 targets, minified)`,
    }))
    add(figure("c.min", "3b. (c) demo, scripts before the first render: minified", "kB", [kB(firstMin)], { note: bytes(firstMin) }))
    add(figure("c.per-before", "3c. (c) / demo app.js before (159 kB gzipped, e7a5506)", "x", [firstGz / DEMO_BEFORE_BYTES], {
      goal: { op: "<=", value: 0.5 },
      note: "the bytes a visit loads before the board shows; e7a5506 had no collaborative descriptions (3e adds them, on demand)",
    }))
    add(figure("c.later", "3e. (c) demo, scripts loaded on demand (a card's description: Yjs): gzipped", "kB", [kB(laterGz)], {
      note: `${bytes(laterGz)}; ${later.join(" + ")}; imported when a description is first opened, precached by the service worker after the first render`,
    }))
    add(figure("c.all", "3f. (c) demo, every script: gzipped", "kB", [kB(firstGz + laterGz)], { note: `3a + 3e: ${bytes(firstGz + laterGz)}; ${((firstGz + laterGz) / DEMO_BEFORE_BYTES).toFixed(3)}x of e7a5506's app.js` }))
    add(figure("c.shell", "3d. demo: every file of a first visit, gzipped", "kB", [kB(shellGz)], { note: `${shell.map(([p]) => p).join(", ")}; source maps excluded; the service worker fetches the on-demand chunks too` }))
    add(figure("yjs.gzip", "4a. yjs + y-websocket: gzipped", "kB", [kB(yjs.gzipped)], { note: `${bytes(yjs.gzipped)}; bench/bundle-entries/yjs.ts` }))
    add(figure("yjs.min", "4b. yjs + y-websocket: minified", "kB", [kB(yjs.minified)], { note: bytes(yjs.minified) }))
    add(figure("automerge.gzip", "5a. automerge + repo + ws adapter: gzipped, script + wasm", "kB", [kB(automerge.gzipped + wasm.gzipped)], {
      note: `script ${bytes(automerge.gzipped)} + automerge.wasm ${bytes(wasm.gzipped)} gzipped (${bytes(wasm.raw)} raw); bench/bundle-entries/automerge.ts (the slim entry, wasm fetched beside the script)`,
    }))
    add(figure("automerge.script", "5b. automerge + repo + ws adapter: script alone, gzipped", "kB", [kB(automerge.gzipped)], { note: `minified ${bytes(automerge.minified)}` }))
    add(figure("a.per-automerge", "5c. (a) / automerge (script + wasm), gzipped", "x", [a.gzipped / (automerge.gzipped + wasm.gzipped)]))
    add(figure("barrel.gzip", "6a. (a) written with `import { Schema } from \"effect\"`: gzipped", "kB", [kB(barrel.gzipped)], { note: `${bytes(barrel.gzipped)}; bench/bundle-entries/core-barrel.ts` }))
    add(figure("barrel.cost", "6b. what the effect barrel costs: gzipped", "kB", [kB(barrel.gzipped - a.gzipped)], {
      note: `6a - 1a: ${bytes(barrel.gzipped - a.gzipped)} gzipped, ${bytes(barrel.minified - a.minified)} minified`,
    }))

    if (ctx.quick) {
      ctx.log("first render from IndexedDB: skipped with --quick (a browser launch per cold run, about a minute); `npm run bench -- --suite bundle` measures it")
    } else if (!chromiumAvailable()) {
      ctx.log(`first render from IndexedDB: skipped, no Chromium at ${CHROMIUM} (\`apt-get install chromium\`, or set CANON_CHROMIUM)`)
    } else {
      const t = await measureFirstRender({ ...FIRST_RENDER, log: ctx.log })
      const setup = `the demo board with ${t.cards} cards in IndexedDB; WebSocket routed to nowhere, so the state can only come from IndexedDB; navigation start to all cards in the DOM`
      add(figure("render.cold", "7a. demo: load -> board rendered from IndexedDB, cold", "ms", t.cold.render, {
        note: `${setup}; cold = new browser process, HTTP cache, code cache and service worker deleted (only IndexedDB kept): page and script from the hub over loopback`,
      }))
      add(figure("render.cold-script", "7b. demo cold: of which until the script ran", "ms", t.cold.script, { note: "DOMContentLoaded (after the deferred app.js ran); the rest is IndexedDB to DOM" }))
      add(figure("render.warm", "7c. demo: load -> board rendered from IndexedDB, warm", "ms", t.warm.render, {
        note: "warm = reload of the same tab, service worker active: app.js from its cache, compiled code from V8's cache",
      }))
      add(figure("render.warm-script", "7d. demo warm: of which until the script ran", "ms", t.warm.script))
    }
    ctx.log(`goals: ${figures.filter((f) => f.goal !== undefined).map((f) => `${f.label} ${formatNumber(f.median)} ${f.unit} (${f.goal!.op} ${f.goal!.value}) ${verdict(f)}`).join("; ")}`)
    return figures
  },
}
