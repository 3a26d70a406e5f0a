/**
 * A subscribe the hub refuses still took a channel in the connection's protocol 2 codec
 * session as its frame was decoded (both ends count subscribe frames; a channel is never given
 * back: core/protocol/codec-shared.ts), and it costs the client nothing but a message. So the
 * hub bounds refused subscribes per connection (hub.ts `refuseSubscribe`,
 * `maxRefusedSubscribes`): past it the connection is closed `rate-limited` and the client
 * comes back with a fresh session (attack review r15, finding 6: a socket filled its session
 * with subscribes naming a machine the hub does not serve).
 */
import { hubWorld } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"
import { DEFAULT_LIMITS } from "../core/authority/limits.js"

const subscribe = (docId: string, machine = Todo.name) =>
  ({ type: "subscribe" as const, docId, machine, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })

test("past maxRefusedSubscribes refused subscribes, the connection is closed rate-limited; up to it, it is not", async () => {
  const { run, peer } = hubWorld({ limits: { maxRefusedSubscribes: 8 } })
  const p = await peer()
  for (let i = 0; i < 8; i++) p.send(subscribe(`unknown-${i}`, "no-such-machine"))
  await run(50)
  expect(p.of("error").map((e) => e.code)).toEqual(Array(8).fill("machine-unknown"))
  expect(p.closed).toBeUndefined()
  // Accepted subscribes are not counted.
  p.send(subscribe("fine"))
  await run(50)
  expect(p.of("synced", "fine")).toHaveLength(1)
  p.send(subscribe("unknown-8", "no-such-machine"))
  await run(50)
  expect(p.closed).toBe("rate-limited")
  expect(p.of("error").some((e) => e.code === "rate-limited" && /More than 8 subscribes refused/.test(e.message))).toBe(true)
})

test("every kind of refusal counts: an invalid docId, a version the hub does not serve, too many documents, a document the client may not read", async () => {
  const { run, peer } = hubWorld({
    limits: { maxRefusedSubscribes: 4, maxDocsPerConnection: 1 },
    authorize: async (_p, docId) => docId !== "secret",
  })
  const p = await peer()
  p.send(subscribe("a"))
  p.send(subscribe("b"))
  p.send(subscribe(""))
  p.send({ ...subscribe("c"), version: Todo.version + 7 })
  await run(50)
  p.send({ type: "unsubscribe", docId: "a" })
  p.send(subscribe("secret"))
  await run(50)
  expect(p.of("error").map((e) => e.code)).toEqual(["too-many-docs", "invalid-doc-id", "schema-too-new", "unauthorized"])
  expect(p.closed).toBeUndefined()
  p.send(subscribe("secret"))
  await run(50)
  expect(p.closed).toBe("rate-limited")
})

test("the default leaves room for a page that opens more documents than one connection may follow", () => {
  expect(DEFAULT_LIMITS.maxRefusedSubscribes).toBeGreaterThanOrEqual(10 * DEFAULT_LIMITS.maxDocsPerConnection)
})
