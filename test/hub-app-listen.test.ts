/**
 * The hub's server after it listens (apps/hub/listen.ts): an error it emits later (an accept
 * that fails with EMFILE when the process is out of descriptors) is reported and the server
 * goes on. Before, the bind's one-time error listener stayed on: it took the first such error
 * silently, and the second, with no listener, threw and ended the process.
 */
import http from "node:http"
import { listen } from "../apps/hub/listen.js"

test("errors after listening are reported, never thrown; the server still answers", async () => {
  const server = http.createServer((_req, res) => res.end("ok"))
  const reported: string[] = []
  const port = await listen(server, "127.0.0.1", 0, (e) => reported.push((e as NodeJS.ErrnoException).code ?? e.message))
  const accept = (n: number) => Object.assign(new Error(`accept EMFILE ${n}`), { code: "EMFILE", syscall: "accept" })
  expect(() => {
    server.emit("error", accept(1))
    server.emit("error", accept(2))
  }).not.toThrow()
  expect(reported).toEqual(["EMFILE", "EMFILE"])
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/`, (res) => {
      let t = ""
      res.on("data", (c: Buffer) => (t += c.toString()))
      res.on("end", () => resolve(t))
    }).on("error", reject)
  })
  expect(body).toBe("ok")
  await new Promise((r) => server.close(r))
})

test("a busy port is said in words", async () => {
  const a = http.createServer()
  const port = await listen(a, "127.0.0.1", 0, () => {})
  await expect(listen(http.createServer(), "127.0.0.1", port, () => {})).rejects.toThrow(`Port ${port} on 127.0.0.1 is in use: stop the other process or pass --port.`)
  await new Promise((r) => a.close(r))
})
