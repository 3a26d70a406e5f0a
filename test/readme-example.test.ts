/**
 * The README's example, as written (port 0 and a temp directory instead of 8787 and ./data).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Schema } from "effect"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"

const Todo = defineMachine({
  name: "todo",
  version: 1,
  initial: () => ({ items: {} as Record<string, { title: string; done: boolean }> }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (state, { id, title }, ctx) => {
        if (state.items[id]) ctx.reject(`There is already an item ${id}.`)
        state.items[id] = { title, done: false }
      },
    },
    toggle: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        item.done = !item.done
      },
    },
  },
})

test("the README example runs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canon-readme-"))
  const storage = await LevelStorage.open(join(dir, "data"))
  const hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const client = await CanonClient.open({ transport: wsClientTransport(server.urls()[0]!), runtime: systemRuntime, storage: new MemoryStorage() })
  const doc = await client.open(Todo, "groceries")
  const seen: unknown[] = []
  doc.subscribe((state) => seen.push(state.items["milk"]?.title))
  const receipt = doc.submit("add", { id: "milk", title: "Milk" })
  expect(doc.state.items["milk"]?.title).toBe("Milk") // before the hub answers
  const { seq } = await receipt
  expect(seq).toBe(1)
  await expect(doc.submit("toggle", { id: "eggs" })).rejects.toMatchObject({ code: "rejected", message: "No item eggs." })
  expect(seen).toContain("Milk")
  await client.close()
  await server.close()
  await hub.close()
  await storage.close()
  rmSync(dir, { recursive: true, force: true })
})
