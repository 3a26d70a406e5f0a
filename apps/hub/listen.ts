/**
 * Binds the hub's server, saying in words why it cannot (a busy port, a port it may not bind,
 * an address not of this machine). Once listening, the server's later errors (an `accept`
 * that fails: EMFILE when the process is out of descriptors) are reported and the server goes
 * on: an `error` event with no listener throws, and would end the hub at the second one (the
 * first went to the bind's one-time listener, which never came off).
 */
import type http from "node:http"

export const listen = (server: http.Server, host: string, port: number, report: (e: Error) => void = reportOnce()): Promise<number> =>
  new Promise((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new Error(`Port ${port} on ${host} is in use: stop the other process or pass --port.`))
      else if (e.code === "EACCES") reject(new Error(`Not allowed to listen on ${host}:${port}: use a port above 1023 or run with the rights to bind it.`))
      else if (e.code === "EADDRNOTAVAIL") reject(new Error(`${host} is not an address of this machine: pass --host 127.0.0.1 or 0.0.0.0.`))
      else reject(e)
    }
    server.once("error", failed)
    server.listen(port, host, () => {
      server.off("error", failed)
      server.on("error", report)
      resolve((server.address() as { port: number }).port)
    })
  })

/** Writes a server error to stderr, each code at most once a minute (an accept failing repeats fast). */
const reportOnce = (): ((e: Error) => void) => {
  const last = new Map<string, number>()
  return (e) => {
    const code = (e as NodeJS.ErrnoException).code ?? e.message
    const now = Date.now()
    if (now - (last.get(code) ?? -Infinity) < 60_000) return
    last.set(code, now)
    process.stderr.write(`The hub's server: ${e.message} (it goes on serving; this is said at most once a minute).\n`)
  }
}
