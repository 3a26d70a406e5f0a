/**
 * Real Chromium for end-to-end tests: Debian's /usr/bin/chromium (`apt-get install
 * chromium`; `.ci/run` installs it when missing) driven by playwright-core. Never a browser
 * download. Each launch gets a fresh profile directory, removed on close.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium, type BrowserContext } from "playwright-core"

export const CHROMIUM = process.env.CANON_CHROMIUM ?? "/usr/bin/chromium"

export const chromiumAvailable = (): boolean => existsSync(CHROMIUM)

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

export interface Profile {
  readonly context: BrowserContext
  close(): Promise<void>
}

/** A browser with its own profile (IndexedDB, service workers, localStorage), like a separate person. */
export const launchProfile = async (options: { viewport?: { width: number; height: number }; args?: ReadonlyArray<string> } = {}): Promise<Profile> => {
  const dir = mkdtempSync(join(tmpdir(), "canon-chromium-"))
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    args: [...ARGS, ...(options.args ?? [])],
    headless: true,
    viewport: options.viewport ?? { width: 1200, height: 800 },
    timeout: 30_000,
  })
  let closed = false
  return {
    context,
    close: async () => {
      if (closed) return
      closed = true
      await context.close().catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A poller bounded by `defaultMs`: `until(what, check, ms?)` polls `check` every 50 ms until it
 * returns true, and fails naming `what` (and the last error `check` threw) after `ms`.
 */
export const pollerOf = (defaultMs: number) =>
  async (what: string, check: () => Promise<boolean> | boolean, ms = defaultMs): Promise<void> => {
    const end = Date.now() + ms
    let last: unknown
    for (;;) {
      try {
        if (await check()) return
      } catch (e) {
        last = e
      }
      if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}${last !== undefined ? ` (last error: ${String(last)})` : ""}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
