/** Helpers for tests over real sockets (loopback only, bounded waits). */
import * as net from "node:net"

/** A loopback port where nothing listens (bound, then released). */
export const deadPort = (host = "127.0.0.1"): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `done` every `stepMs` until it holds or `maxMs` went by; returns done(). */
export const until = async (done: () => boolean, maxMs: number, stepMs = 5): Promise<boolean> => {
  const end = Date.now() + maxMs
  while (!done()) {
    if (Date.now() >= end) return false
    await sleep(stepMs)
  }
  return true
}
