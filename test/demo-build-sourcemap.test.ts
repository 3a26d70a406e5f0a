/**
 * The demo's public source maps name their sources relative to the repository. esbuild names
 * them relative to its outdir, which was "/out": every source climbed to the checkout's
 * absolute path ("../work/main/apps/demo/web/..."), served to anyone as /app.js.map with an
 * immutable cache header, so the hub showed where it runs from (found by a helper attacking
 * the HTTP surface).
 */
import { resolve } from "node:path"
import { buildDemo } from "../apps/demo/build.js"

test("app.js.map names no absolute path of the machine that built it", async () => {
  const assets = await buildDemo()
  const maps = [...assets.files.entries()].filter(([path]) => path.endsWith(".map"))
  expect(maps.length).toBeGreaterThan(0)
  const root = resolve(".").split("/").filter(Boolean)
  for (const [, file] of maps) {
    const sources = (JSON.parse(file.body.toString()) as { sources: string[] }).sources
    for (const s of sources) {
      expect(s.startsWith("../apps/") || s.startsWith("../node_modules/") || s.startsWith("../core/") || s.startsWith("../adapters/")).toBe(true)
      // No segment of the checkout's own path before the repository.
      expect(s.split("/").filter((p) => p !== ".." && p !== "").slice(0, 1)).not.toEqual([root[0]])
    }
  }
}, 120_000)
