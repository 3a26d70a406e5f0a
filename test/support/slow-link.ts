/**
 * A slow link on 127.0.0.1 for tests of readers the hub must keep: a TCP proxy that reads the
 * hub's socket at a set pace, so what the kernel's buffers cannot take stays in the hub, as
 * on a real slow link.
 */
import * as net from "node:net"

/**
 * A proxy to `port` that passes what the hub sends at `rate` bytes a second (what the client
 * sends, at once). It keeps its pace by the clock, so a timer run late (a loaded machine) is
 * made up by the next ones: the link stays as fast as it says.
 */
export const slowLink = (port: number, rate: number) => new Promise<{ port: number; close(): void }>((resolve) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((down) => {
    const up = net.connect(port, "127.0.0.1")
    sockets.add(up).add(down)
    let freeAt = Date.now()
    down.on("data", (d) => up.write(d))
    up.on("data", (d) => {
      down.write(d)
      up.pause()
      freeAt = Math.max(freeAt, Date.now()) + (d.length / rate) * 1000
      setTimeout(() => up.resume(), freeAt - Date.now())
    })
    const end = () => { up.destroy(); down.destroy() }
    for (const s of [up, down]) { s.on("close", end); s.on("error", end) }
  })
  server.listen(0, "127.0.0.1", () => resolve({
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }))
})

