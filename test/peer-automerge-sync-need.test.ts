/**
 * ATTACK (critical): a 69-byte Automerge sync message whose `need` lists one of the victim's
 * own change hashes twice makes `A.generateSyncMessage` panic (Rust `unwrap()` on
 * `Err(MissingOps)`, surfaced as a JS `PanicError`).
 *
 * Mechanism: AutomergeReplica.receive() wraps only decode + receiveSyncMessage in try/catch;
 * receiveSyncMessage accepts the message and stores `theirNeed = [h, h]` in the link's
 * SyncState. The heads do not change, so receive() calls offer(a) -> generateSyncMessage()
 * OUTSIDE the try: it throws out of the PeerLink listener.
 *   - Over ws-listen the listener runs inside ws's 'message' event: an uncaught exception,
 *     the listening replica process dies (measured: exits within ~100 ms of the frame).
 *   - Without a crash (memory / BroadcastChannel links, or a process with an
 *     uncaughtException handler) the link's SyncState stays poisoned: every later
 *     `replica.change()` throws PanicError too (changed() offers on every link), the change's
 *     offers to the other links after it in the Set and the onChange listeners are skipped.
 * The hashes needed are public: every sync message the victim sends carries its heads.
 * (Distinct from the structural-validator class the lead is fixing: the message is
 * well-formed and carries no changes at all.)
 */
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { spawn, type ChildProcess } from "node:child_process"
import { AutomergeReplica, memoryLinkPair } from "../adapters/peer/index.js"
import { probeLink } from "./support/probe-link.js"
import { sleep, until } from "./support/ws.js"
import { attach } from "./support/replicas.js"

const dupNeed = (hash: string): Uint8Array =>
  A.encodeSyncMessage({ heads: [], need: [hash, hash], have: [], changes: [] } as unknown as A.DecodedSyncMessage)

test("a sync message that needs one hash twice neither throws out of the link listener nor poisons the replica", async () => {
  const replica = new AutomergeReplica(A.from({ items: ["a"] as string[] }))
  const attacker = probeLink()
  attach(replica, attacker.link)
  const head = A.getHeads(replica.doc)[0]!
  const msg = dupNeed(head)
  expect(msg.length).toBeLessThan(100)
  // The peer's message must be dropped or answered, never thrown to the transport.
  expect(() => attacker.deliver(msg)).not.toThrow()
  await (replica as { idle?: () => Promise<void> }).idle?.()
  // And the replica must keep working for its user and its other peers.
  const [other, otherPeer] = memoryLinkPair()
  void otherPeer
  attach(replica, other)
  expect(() => replica.change((d) => { d.items.push("after") })).not.toThrow()
  expect(replica.doc.items).toEqual(["a", "after"])
})

test("over ws-listen the same 69 bytes do not kill the listening replica process", async () => {
  const children: ChildProcess[] = []
  try {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/peer-automerge-node.ts"], { cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: "" } })
    children.push(child)
    let port = 0
    let stderr = ""
    child.stdout!.on("data", (d: Buffer) => { const m = /PORT (\d+)/.exec(d.toString()); if (m) port = Number(m[1]) })
    child.stderr!.on("data", (d: Buffer) => { stderr += d.toString() })
    expect(await until(() => port > 0, 15_000)).toBe(true)

    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    ws.binaryType = "nodebuffer"
    let heads: string[] = []
    ws.on("message", (data: Buffer) => { try { heads = A.decodeSyncMessage(new Uint8Array(data)).heads } catch { /* ignore */ } })
    ws.on("error", () => {})
    // The victim offers first (its heads are in that message).
    expect(await until(() => heads.length > 0, 5_000)).toBe(true)
    ws.send(dupNeed(heads[0]!))
    await sleep(1_500)
    if (child.exitCode !== null) console.log(`victim exited with code ${child.exitCode}: ${stderr.split("\n").find((l) => l.includes("Error")) ?? ""}`)
    expect(child.exitCode).toBeNull()
    ws.terminate()
  } finally {
    for (const c of children) c.kill("SIGTERM")
  }
}, 30_000)
