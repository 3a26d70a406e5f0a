/**
 * A long offline outbox goes out in submits that fit a frame, however the arguments' compact
 * form (protocol 2, core/protocol/args-codec.ts) compares with their canonical one. A union
 * costs its member's index on top of the value: booleans typed `Union(Union(Boolean, Number),
 * String)` are three times as large compact as canonical. Counted by their canonical size (or
 * its estimate, which counts a boolean as one byte), 26 such commands of 20 KB filled one
 * submit past the 1 MiB frame limit; the transport refused it (too-large), the client
 * reconnected and sent the same submit again, for ever.
 */
import * as Schema from "effect/Schema"
import { DEFAULT_MAX_FRAME_BYTES, Doc, defineMachine, type ClientMessage } from "../core/index.js"
import { CodecSession, encodeClientMessage } from "../core/internal.js"

const Flags = defineMachine({
  name: "flags",
  version: 1,
  initial: () => ({ n: 0 }),
  commands: {
    // Each boolean: one byte canonical, three compact (two union indexes and the value).
    set: { args: Schema.Struct({ flags: Schema.Array(Schema.Union([Schema.Union([Schema.Boolean, Schema.Number]), Schema.String])) }), apply: (s: { n: number }) => { s.n++ } },
  },
})

const runtime = { now: () => 0, random: () => 0, setTimer: () => ({ cancel() {} }) }

test("submits of compact arguments larger than their canonical form still fit a frame", async () => {
  const doc = new Doc(Flags, "d", "me", undefined, runtime, { state: Flags.initial(), confirmedSeq: 0, nextClientSeq: 1, snapshotSeq: 0, outbox: [] }, {})
  // 20 KB canonical each, 60 KB compact (under the size past which args-codec sends the smaller form).
  const flags = Array.from({ length: 20_000 }, (_, i) => i % 2 === 0)
  for (let i = 0; i < 30; i++) doc.submit("set", { flags })
  await new Promise((resolve) => setTimeout(resolve, 0))
  const sent: ClientMessage[] = []
  doc.connected((m) => sent.push(m), 2)
  const session = new CodecSession()
  const sizes: number[] = []
  for (const m of sent) {
    const frame = encodeClientMessage(m, { version: 2, session, maxFrameBytes: Number.MAX_SAFE_INTEGER })
    if (m.type === "submit") sizes.push(frame.length)
  }
  expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(30 * 59_000)
  for (const size of sizes) expect(size).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BYTES)
})
