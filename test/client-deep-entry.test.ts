/**
 * An entry is no deeper than a hub takes a command's arguments (MAX_ARGS_DEPTH). The client's
 * codec read an entry's arguments down to the decoder's own limit (512 levels); the replica
 * stores each entry inside a record, a level down, so an entry of 496-511 levels (only a
 * hostile or broken hub sends one: a hub refuses such a command) failed every later write of
 * the document's store: the app heard `storage-failed` about once a second, and the hub's
 * confirmation of its own command was never stored or told (found by a helper attacking the
 * client). Such a frame is now unreadable where it arrives.
 */
import { CanonClient, encodeCanonical, type ClientMessage, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { MAX_ARGS_DEPTH } from "../core/limits.js"
import { decodeServerMessage, encodeServerMessage } from "../core/protocol/codec.js"
import { ClientLink } from "../adapters/ws/shared.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const nested = (levels: number): unknown => {
  let v: unknown = 0
  for (let i = 0; i < levels; i++) v = [v]
  return v
}
const entries = (args: unknown): ServerMessage => ({ type: "entries", docId: "list", entries: [{ seq: 1, time: 1, clientId: "x", clientSeq: 1, name: "add", args }] })

test("entries decode down to MAX_ARGS_DEPTH levels, and what decodes can be stored a level down", () => {
  const at = decodeServerMessage(encodeServerMessage(entries(nested(MAX_ARGS_DEPTH)), { version: 1 }), { version: 1 })
  if (at.ok !== true || at.message.type !== "entries") throw new Error(`not decoded: ${JSON.stringify(at)}`)
  const e = at.message.entries[0]!
  expect(() => encodeCanonical([1, 1, "x", 1, "add", e.args])).not.toThrow()
  const over = decodeServerMessage(encodeServerMessage(entries(nested(MAX_ARGS_DEPTH + 1)), { version: 1 }), { version: 1 })
  expect(over.ok).toBe(false)
})

test("a hub's entry past the depth a hub takes ends the connection; the store keeps working", async () => {
  let link: ClientLink | undefined
  const closes: string[] = []
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      link = new ClientLink(l, { idleTimeoutMs: 0, connectTimeoutMs: 0 })
      link.attach({ bufferedAmount: 0, send: () => {}, close: (code: number, reason: string) => void closes.push(`${code} ${reason.split(":")[0]}`) })
      setTimeout(() => link!.opened(), 0)
      return link
    },
  }
  const flush = () => new Promise((r) => setTimeout(r, 2))
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport, runtime: new VirtualRuntime(1), storage, clientId: "c1", machines: [Todo], autoConnect: false })
  const doc = await client.open(Todo, "list")
  const errors: string[] = []
  doc.on("error", (e) => errors.push(e.code))
  client.connect()
  await flush()
  link!.frame(encodeServerMessage({ type: "welcome", protocol: 1, clientId: "c1" }))
  await flush()
  link!.frame(encodeServerMessage(entries(nested(MAX_ARGS_DEPTH + 8)), { version: 1 }))
  await flush()
  expect(closes).toEqual(["4002 protocol-error"])
  // Nothing of it was taken: edits are stored as ever.
  const r = doc.submit("add", { id: "a", title: "A" })
  r.catch(() => {})
  await r.persisted
  await doc.whenStored()
  expect(errors).not.toContain("storage-failed")
  expect(doc.confirmedSeq).toBe(0)
  await client.close()
})
