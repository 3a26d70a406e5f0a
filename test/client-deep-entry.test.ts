/**
 * An entry reads only if it can be stored. The client's codec read an entry's arguments down
 * to the decoder's own limit (512 levels); the replica stores each entry inside a record, a
 * level down, so an entry of 496-511 levels (only a hostile or broken hub sends one: a hub
 * refuses such a command) failed every later write of the document's store: the app heard
 * `storage-failed` about once a second, and the hub's confirmation of its own command was
 * never stored or told (found by a helper attacking the client). Both wire forms read at
 * ENTRY_ARGS_READ_DEPTH: everything a hub takes (MAX_ARGS_DEPTH levels of objects and arrays,
 * bytes or a string a level deeper, which the decoder counts) reads, and nothing that cannot be
 * stored does. A review found the first fix refused an honest entry with bytes at the bottom
 * (protocol 1) and left protocol 2's compact form open.
 */
import { CanonClient, encodeCanonical, type ClientMessage, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { ENTRY_ARGS_READ_DEPTH, MAX_ARGS_DEPTH, depthExceeds } from "../core/limits.js"
import { decodeServerMessage, encodeServerMessage } from "../core/protocol/codec.js"
import { argsCodecOf } from "../core/protocol/args-codec.js"
import * as SchemaAST from "effect/SchemaAST"
import { ClientLink } from "../adapters/ws/shared.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

/** `leaf` inside `levels` arrays. */
const nested = (levels: number, leaf: unknown = 0): unknown => {
  let v: unknown = leaf
  for (let i = 0; i < levels; i++) v = [v]
  return v
}
const entries = (args: unknown): ServerMessage => ({ type: "entries", docId: "list", entries: [{ seq: 1, time: 1, clientId: "x", clientSeq: 1, name: "add", args }] })

/** The arguments as protocol 1 reads them, or undefined. */
const readV1 = (args: unknown): unknown => {
  const d = decodeServerMessage(encodeServerMessage(entries(args), { version: 1 }), { version: 1 })
  return d.ok === true && d.message.type === "entries" ? d.message.entries[0]!.args : undefined
}
/** The arguments as protocol 2's compact value form reads them, or undefined. */
const readV2 = (args: unknown): unknown => {
  try {
    return argsCodecOf(SchemaAST.unknown).decode(new Uint8Array([1, ...encodeCanonical(args)]), ENTRY_ARGS_READ_DEPTH)
  } catch {
    return undefined
  }
}
const storable = (args: unknown): boolean => {
  try {
    encodeCanonical([1, 1, "x", 1, "add", args])
    return true
  } catch {
    return false
  }
}

test("an entry reads on both protocols if a hub takes it, and only if it can be stored", () => {
  for (const leaf of [0, "s", new Uint8Array([1]), {}]) {
    for (let levels = MAX_ARGS_DEPTH - 4; levels < 512; levels++) {
      const args = nested(levels, leaf)
      let encodable = true
      try {
        encodeCanonical(args)
      } catch {
        encodable = false
      }
      if (!encodable) continue
      const hubTakes = !depthExceeds(args, MAX_ARGS_DEPTH)
      for (const read of [readV1, readV2]) {
        const got = read(args)
        if (hubTakes) expect(got).toBeDefined()
        if (got !== undefined) expect(storable(got)).toBe(true)
      }
    }
  }
  // The deepest a hub takes: MAX_ARGS_DEPTH arrays, bytes at the bottom.
  expect(depthExceeds(nested(MAX_ARGS_DEPTH, new Uint8Array([1])), MAX_ARGS_DEPTH)).toBe(false)
  expect(readV1(nested(MAX_ARGS_DEPTH, new Uint8Array([1])))).toBeDefined()
  expect(readV1(nested(MAX_ARGS_DEPTH + 8))).toBeUndefined()
  expect(readV2(nested(MAX_ARGS_DEPTH + 8))).toBeUndefined()
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
