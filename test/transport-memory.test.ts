/** The shared Transport conformance suite over the in-memory network. */
import { MemoryNetwork, VirtualRuntime } from "../adapters/memory/index.js"
import { transportConformance } from "./transport-conformance.js"

transportConformance("memory", () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 1 + Math.floor(rt.random() * 3) })
  const nowhere = new MemoryNetwork(rt, { latency: () => 1 })
  let n = 0
  return {
    serve: async (acceptor) => net.listen(acceptor),
    client: () => net.transport(`client-${n++}`),
    nowhere: () => nowhere.transport("lost"),
    until: async (done, maxMs) => {
      await rt.run({ forMs: maxMs, until: done })
      return done()
    },
    stop: async () => net.stopServer(),
    maxFrameBytes: undefined,
    dispose: async () => {},
  }
})
