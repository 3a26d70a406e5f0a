/**
 * Careless operator: an empty CANON_HOST (an env file with `CANON_HOST=`, a compose
 * file's `CANON_HOST: ${HOST}` with HOST unset) or `--host=`.
 *
 * apps/hub/config.ts takes `flags.get("host") ?? env.CANON_HOST ?? "127.0.0.1"`: "" is not
 * nullish, so host is "". apps/hub/start.ts then calls server.listen(port, ""), and Node binds
 * an empty host to "::", every interface, IPv4 included. The README promises loopback by
 * default; the demo hub has no authentication; the banner prints "http://:PORT", which hides
 * where it listens. Every other CANON_* variable treats "" as unset (CANON_SYNC,
 * CANON_MAX_CONNECTIONS_PER_ADDRESS, CANON_TRUST_PROXY) or refuses it (CANON_PORT).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigError, parseConfig, type HubConfig } from "../apps/hub/config.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { statusPage } from "../apps/hub/status-page.js"
import { Board } from "../apps/demo/board.js"

let dir: string
let running: RunningHub | undefined
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-attack-host-")) })
afterEach(async () => {
  await running?.close().catch(() => {})
  running = undefined
  rmSync(dir, { recursive: true, force: true })
})

test("an empty CANON_HOST means the default (loopback), not every interface", () => {
  const c = parseConfig([], { CANON_HOST: "" }) as HubConfig
  expect(c.host).toBe("127.0.0.1")
})

test("an empty --host is refused with a sentence, not bound to every interface", () => {
  expect(() => parseConfig(["--host="], {})).toThrow(ConfigError)
  expect(() => parseConfig(["--host", ""], {})).toThrow(ConfigError)
})

test("a hub started from CANON_HOST= prints a usable URL on loopback", async () => {
  let c: HubConfig | "help"
  try {
    c = parseConfig(["--data", join(dir, "data"), "--port", "0"], { CANON_HOST: "" })
  } catch (e) {
    // Refusing it is fine too.
    expect(e).toBeInstanceOf(ConfigError)
    return
  }
  running = await startHub(c as HubConfig, [Board], statusPage)
  expect(new URL(running.url).hostname).toBe("127.0.0.1")
  expect((await fetch(`${running.url}/status`)).status).toBe(200)
})
