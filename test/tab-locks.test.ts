/**
 * Locks across tabs where the page has no Web Locks (adapters/system/tab-locks.ts): a page over
 * plain http from a LAN address is not a secure context, navigator.locks is undefined there,
 * and two tabs opened one replica (same clientId and outbox: one tab's commands dropped as the
 * other's retries). Each TabLocks here is one tab: Node delivers a BroadcastChannel's
 * messages to every other channel of the name in the process, as a browser does across tabs.
 */
import { TabLocks, pageLockRequester } from "../adapters/system/tab-locks.js"
import { holdWebLock } from "../adapters/system/web-lock.js"
import { Hold } from "../core/store/hold.js"

const tabs: TabLocks[] = []
let channel = 0
const tab = (ticket?: () => number) => {
  const t = new TabLocks(`tab-locks-test-${channel}`, 60, ticket)
  tabs.push(t)
  return t
}
afterEach(() => {
  for (const t of tabs.splice(0)) t.close()
  channel++
})

/** Takes `name` in `t` and holds it until the returned function is called; rejects as the request does. */
const hold = (t: TabLocks, name: string, ms = 1_000): Promise<() => void> =>
  new Promise((resolve, reject) => {
    t.request(name, { signal: AbortSignal.timeout(ms) }, () => new Promise<void>((letGo) => resolve(letGo))).catch(reject)
  })

const reason = (p: Promise<unknown>) => p.then(() => "held", (e: { name?: string }) => e?.name ?? String(e))

test("a name one tab holds is not another's until it lets go", async () => {
  const a = tab()
  const b = tab()
  const letGo = await hold(a, "canon:board")
  expect(await reason(hold(b, "canon:board", 300))).toBe("TimeoutError")
  letGo()
  const again = await hold(b, "canon:board", 1_000)
  again()
  // Other names are free meanwhile.
  const other = await hold(b, "canon:other")
  other()
})

test("two tabs asking at once: exactly one holds the name (the smaller ticket), the other waits for it", async () => {
  for (let round = 0; round < 5; round++) {
    const a = tab(() => 0.1 + round / 100)
    const b = tab(() => 0.9 - round / 100)
    const [ra, rb] = [hold(a, `n${round}`, 400), hold(b, `n${round}`, 400)]
    expect([await reason(ra), await reason(rb)]).toEqual(["held", "TimeoutError"])
    ;(await ra)()
  }
})

test("a tab that went away holds nothing: the next ask gets the name", async () => {
  const a = tab()
  await hold(a, "canon:board")
  a.close() // the tab closed or crashed without letting go
  const b = tab()
  const letGo = await hold(b, "canon:board", 500)
  letGo()
})

test("messages of any shape on the channel change nothing and throw nothing", async () => {
  const a = tab()
  const b = tab()
  const stranger = new BroadcastChannel(`tab-locks-test-${channel}`)
  for (const m of [null, 1, "ask", [], { t: "ask" }, { t: "ask", name: 5 }, { t: "ask", name: "x", ticket: "1" }, { t: "held", name: "x", to: "1" }, { t: "held" }, { name: { toString: null } }]) stranger.postMessage(m)
  const letGo = await hold(a, "x")
  expect(await reason(hold(b, "x", 250))).toBe("TimeoutError")
  letGo()
  stranger.close()
})

test("holdWebLock in a page without Web Locks refuses a second client of the same store, through the page's TabLocks", async () => {
  const g = globalThis as { document?: unknown }
  g.document = {}
  try {
    expect(pageLockRequester()).toBeInstanceOf(TabLocks)
    const letGo = await holdWebLock(new Hold(), "store-a", () => new Error("in use"))
    // Another store object of the same data (the Hold is per object): the lock refuses it.
    await expect(holdWebLock(new Hold(), "store-a", () => new Error("in use"))).rejects.toThrow("in use")
    letGo()
  } finally {
    delete g.document
  }
  // Node (no document): no page locks; a process holds its own stores.
  expect(pageLockRequester()).toBeUndefined()
}, 15_000)

/**
 * A holding tab in a thread of its own: `body` runs there with `TabLocks`, `answererSource`,
 * `parentPort` and the channel's name (`channel`) in scope, and posts "held" to the test once
 * it holds. Resolves with the thread once it has; the test terminates it.
 */
const holderThread = async (body: string) => {
  const { Worker } = await import("node:worker_threads")
  const { transformSync } = await import("esbuild")
  const { readFileSync } = await import("node:fs")
  const source = transformSync(readFileSync(new URL("../adapters/system/tab-locks.ts", import.meta.url), "utf8"), { loader: "ts", format: "esm", target: "node20" }).code
  const url = `data:text/javascript;base64,${Buffer.from(source).toString("base64")}`
  const script = `
    const { parentPort, workerData } = require("node:worker_threads")
    const channel = workerData.channel
    import(workerData.url).then(({ TabLocks, answererSource }) => { ${body} })`
  const worker = new Worker(script, { eval: true, workerData: { channel: `tab-locks-test-${channel}`, url } })
  try {
    await new Promise<void>((resolve, reject) => { worker.once("message", () => resolve()); worker.once("error", reject) })
  } catch (e) {
    await worker.terminate()
    throw e
  }
  return worker
}

test.each([320, 440, 500])("a tab busy %i ms right after asking (a page starting) does not take a name a tab in another thread holds and answered for", async (busyMs) => {
  // The holder: the real TabLocks in its own thread, answering as soon as an ask arrives.
  const worker = await holderThread(`
    const t = new TabLocks(channel)
    setInterval(() => {}, 1000)
    void t.request("slot-0", {}, () => { parentPort.postMessage("held"); return new Promise(() => {}) })`)
  try {
    const b = new TabLocks(`tab-locks-test-${channel}`)
    tabs.push(b)
    const got = reason(hold(b, "slot-0", 1_500))
    const end = Date.now() + busyMs // the asking page's own long task: longer than the window
    while (Date.now() < end) { /* busy */ }
    expect(await got).toBe("TimeoutError")
  } finally {
    await worker.terminate()
  }
}, 15_000)

test("a holder whose page is busy for longer than the window still answers, from its worker: the name is not taken from it", async () => {
  // Before, the page answered alone: a holder in a long task (a render of a big board) let an
  // asking tab take the name after one window, and both tabs opened one replica.
  // The holder: the real TabLocks in a thread of its own (its page), with a worker thread to
  // answer for it; once it holds the name its page is busy for 2.5 s.
  const worker = await holderThread(`
    const answerer = (ch) => {
      const w = new (require("node:worker_threads").Worker)(answererSource(ch), { eval: true })
      return { post: (m) => w.postMessage(m), close: () => w.terminate(), ready: new Promise((r) => w.once("message", r)) }
    }
    const t = new TabLocks(channel, undefined, undefined, answerer)
    void t.request("slot-0", {}, () => {
      parentPort.postMessage("held")
      setTimeout(() => { const end = Date.now() + 2_500; while (Date.now() < end) {} }, 50)
      return new Promise(() => {})
    })`)
  try {
    await new Promise((r) => setTimeout(r, 200)) // the holder's page is in its long task
    const b = new TabLocks(`tab-locks-test-${channel}`)
    tabs.push(b)
    expect(await reason(hold(b, "slot-0", 1_500))).toBe("TimeoutError")
  } finally {
    await worker.terminate()
  }
}, 15_000)

test("a tab uses a name it took only once its answerer answers (a worker needs its page's turns to start)", async () => {
  let started!: () => void
  const ready = new Promise<void>((r) => (started = r))
  const posted: unknown[] = []
  const t = new TabLocks(`tab-locks-test-${channel}`, 60, undefined, () => ({ post: (m) => void posted.push(m), close() {}, ready }))
  tabs.push(t)
  let used = false
  void t.request("slot-0", {}, async () => { used = true; await new Promise(() => {}) })
  await new Promise((r) => setTimeout(r, 400))
  // Taken (its answerer told), not used yet.
  expect(posted).toEqual([{ hold: "slot-0" }])
  expect(used).toBe(false)
  started()
  await new Promise((r) => setTimeout(r, 20))
  expect(used).toBe(true)
})
