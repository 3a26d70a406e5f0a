/**
 * The child side of HubChild (snapshots-common.ts), with no dependency on Canon: answers the parent's requests over IPC,
 * samples this process's RSS from a worker thread (`mark` restarts the peak after a full GC,
 * `peak` reads it), and runs the hub-specific operations it is given.
 */
import { Worker } from "node:worker_threads"

/**
 * The worker thread that samples this process's RSS every 2 ms: a separate thread keeps
 * sampling while the event loop is busy (a synchronous encode would otherwise hide its own peak).
 */
const RSS_SAMPLER = `
const { parentPort } = require("node:worker_threads")
let peak = process.memoryUsage.rss()
let samples = 0
setInterval(() => {
  const r = process.memoryUsage.rss()
  samples++
  if (r > peak) peak = r
}, 2)
parentPort.on("message", (m) => {
  if (m === "reset") { peak = process.memoryUsage.rss(); samples = 0; parentPort.postMessage({ peak, samples }) }
  else if (m === "read") parentPort.postMessage({ peak: Math.max(peak, process.memoryUsage.rss()), samples })
})
`

type Handler = (args: Record<string, unknown>) => Promise<unknown> | unknown

const gc = (globalThis as { gc?: () => void }).gc

/** A full GC, twice (the second collects what the first's finalizers let go). */
export const collect = (): void => {
  gc?.()
  gc?.()
}

export const serveParent = (handlers: Record<string, Handler>): void => {
  const sampler = new Worker(RSS_SAMPLER, { eval: true })
  sampler.unref()
  const ask = (m: string): Promise<{ peak: number; samples: number }> =>
    new Promise((resolve) => {
      sampler.once("message", resolve)
      sampler.postMessage(m)
    })
  const all: Record<string, Handler> = {
    ...handlers,
    mark: async () => {
      collect()
      await new Promise((r) => setTimeout(r, 20))
      collect()
      await ask("reset")
      return { rss: process.memoryUsage.rss() }
    },
    /** Process CPU (user + system, all threads) in ms since it started. */
    cpu: () => {
      const c = process.cpuUsage()
      return { ms: (c.user + c.system) / 1000 }
    },
    peak: async () => {
      const { peak, samples } = await ask("read")
      return { peak, rss: process.memoryUsage.rss(), samples }
    },
  }
  process.on("message", (m: { id: number; op: string } & Record<string, unknown>) => {
    if (m.op === "exit") {
      void Promise.resolve(handlers.close?.({})).finally(() => process.exit(0))
      return
    }
    const h = all[m.op]
    if (h === undefined) {
      process.send!({ id: m.id, error: `unknown request ${m.op}` })
      return
    }
    Promise.resolve()
      .then(() => h(m))
      .then(
        (value) => process.send!({ id: m.id, value }),
        (e: unknown) => process.send!({ id: m.id, error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) }),
      )
  })
  process.on("disconnect", () => process.exit(0))
}
