/**
 * Peer-to-peer CRDT sync without the hub: Yjs and Automerge over memory, BroadcastChannel and
 * WebSocket links (two real Node processes), held bytes bounded, and convergence with the hub
 * once it is back (a replica hands the hub what it got from a peer).
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { memoryLinkPair } from "../core/crdt-docs/peer-link.js"
import { AutomergeReplica, YSyncSession, broadcastChannelLink, openYDoc } from "../adapters/peer/index.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { startCrdtServer } from "./support/crdt-child.js"
import { sleep, until } from "./support/ws.js"
import { attach } from "./support/replicas.js"

const text = (d: Y.Doc) => d.getText("t").toString()

test("two Yjs replicas on a memory link: edits made apart merge on connect, live edits follow", async () => {
  const [la, lb] = memoryLinkPair()
  la.setConnected(false)
  const a = new Y.Doc()
  const b = new Y.Doc()
  new YSyncSession(a, la)
  new YSyncSession(b, lb)
  a.getText("t").insert(0, "from a;")
  b.getText("t").insert(0, "from b;")
  await sleep(10)
  expect(text(a)).toBe("from a;")
  la.setConnected(true)
  expect(await until(() => text(a) === text(b) && text(a).length === 14, 2_000)).toBe(true)
  b.getText("t").insert(0, "live;")
  expect(await until(() => text(a) === text(b) && text(a).startsWith("live;"), 2_000)).toBe(true)
})

test("an update whose dependencies have not arrived is never held: it is dropped and the handshake fetches it", async () => {
  const [la, lb] = memoryLinkPair()
  const a = new Y.Doc()
  const session = new YSyncSession(a, la)
  new YSyncSession(new Y.Doc(), lb)
  await sleep(10)
  // A third doc's updates delivered backwards: each waits for the one before it.
  const src = new Y.Doc()
  const updates: Uint8Array[] = []
  src.on("update", (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < 60; i++) src.getText("t").insert(i, "abcdefghij")
  for (const u of updates.slice(1).reverse()) lb.send(encodeUpdate(u))
  await sleep(20)
  expect(session.resyncs).toBeGreaterThan(0)
  const store = a.store as unknown as { pendingStructs: unknown; pendingDs: unknown }
  expect(store.pendingStructs).toBeNull()
  expect(store.pendingDs).toBeNull()
  lb.send(encodeUpdate(Y.encodeStateAsUpdate(src)))
  expect(await until(() => text(a) === text(src), 2_000)).toBe(true)
})

test("a malformed message from a peer is reported, not applied", async () => {
  const [la, lb] = memoryLinkPair()
  const a = new Y.Doc()
  a.getText("t").insert(0, "kept")
  const errors: string[] = []
  new YSyncSession(a, la, { onError: (e) => errors.push(e.code) })
  lb.send(encodeUpdate(new Uint8Array([9, 9, 9, 9])))
  lb.send(new Uint8Array([0, 0x80]))
  expect(await until(() => errors.length === 2, 2_000)).toBe(true)
  expect(text(a)).toBe("kept")
})

test("Yjs and Automerge over BroadcastChannel", async () => {
  const a = new Y.Doc()
  const b = new Y.Doc()
  a.getText("t").insert(0, "A")
  b.getText("t").insert(0, "B")
  const la = broadcastChannelLink("canon-test-y")
  const lb = broadcastChannelLink("canon-test-y")
  new YSyncSession(a, la)
  new YSyncSession(b, lb)
  // Each side's step1 went out when it joined; b joined last, so a answers it.
  expect(await until(() => text(a) === text(b) && text(a).length === 2, 5_000)).toBe(true)

  const ra = new AutomergeReplica(A.from({ items: ["a"] as string[] }))
  const rb = new AutomergeReplica(A.clone(ra.doc))
  ra.change((d) => { d.items.push("a2") })
  rb.change((d) => { d.items.push("b2") })
  const ca = broadcastChannelLink("canon-test-am")
  const cb = broadcastChannelLink("canon-test-am")
  attach(rb, cb)
  attach(ra, ca)
  expect(await until(() => ra.doc.items.length === 3 && JSON.stringify(ra.doc) === JSON.stringify(rb.doc), 5_000)).toBe(true)
  for (const l of [la, lb, ca, cb]) l.close()
})

test("three Automerge replicas in a chain over memory links converge; a partition heals", async () => {
  const [ab1, ab2] = memoryLinkPair()
  const [bc1, bc2] = memoryLinkPair()
  const ra = new AutomergeReplica(A.from({ text: "" }))
  const rb = new AutomergeReplica(A.clone(ra.doc))
  const rc = new AutomergeReplica(A.clone(ra.doc))
  attach(ra, ab1)
  attach(rb, ab2)
  attach(rb, bc1)
  attach(rc, bc2)
  bc1.setConnected(false)
  ra.change((d) => A.splice(d, ["text"], 0, 0, "a"))
  rc.change((d) => A.splice(d, ["text"], 0, 0, "c"))
  expect(await until(() => rb.doc.text.includes("a"), 2_000)).toBe(true)
  expect(rb.doc.text.includes("c")).toBe(false)
  bc1.setConnected(true)
  const same = () => ra.doc.text.length === 2 && ra.doc.text === rb.doc.text && rb.doc.text === rc.doc.text
  expect(await until(same, 3_000)).toBe(true)
})

test("hub unreachable: replicas edit and exchange over a peer link; when the hub is back all converge", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canon-p2p-"))
  let hub = await startCrdtServer(dir)
  const endpoint = `ws://127.0.0.1:${hub.port}/yjs`
  const WS = WebSocket
  const opened: Array<{ close(): void }> = []
  try {
    const a = openYDoc(endpoint, "shared", { WebSocket: WS })
    const b = openYDoc(endpoint, "shared", { WebSocket: WS })
    opened.push(a, b)
    await a.synced
    await b.synced
    a.doc.getText("t").insert(0, "start|")
    expect(await until(() => text(b.doc) === "start|", 5_000)).toBe(true)

    const port = hub.port
    await hub.stop()
    expect(await until(() => !a.link.isOpen && !b.link.isOpen, 5_000)).toBe(true)
    // A peer link between a and b, and c: a replica that never talks to the hub, only to b.
    const [ab1, ab2] = memoryLinkPair()
    const [bc1, bc2] = memoryLinkPair()
    const c = new Y.Doc()
    new YSyncSession(a.doc, ab1)
    new YSyncSession(b.doc, ab2)
    new YSyncSession(b.doc, bc1)
    new YSyncSession(c, bc2)
    a.doc.getText("t").insert(text(a.doc).length, "a-offline|")
    b.doc.getText("t").insert(0, "b-offline|")
    c.getText("t").insert(0, "c-only-p2p|")
    const all = (s: string) => ["start|", "a-offline|", "b-offline|", "c-only-p2p|"].every((w) => s.includes(w))
    expect(await until(() => all(text(a.doc)) && text(a.doc) === text(b.doc) && text(b.doc) === text(c), 5_000)).toBe(true)
    ab1.close()
    // a edits once more, alone: only the hub can bring this to b and c.
    a.doc.getText("t").insert(0, "a-after-split|")

    hub = await startCrdtServer(dir, port)
    const fresh = openYDoc(endpoint, "shared", { WebSocket: WS })
    opened.push(fresh)
    const done = (s: string) => all(s) && s.includes("a-after-split|")
    expect(await until(() => done(text(fresh.doc)) && text(fresh.doc) === text(a.doc) && text(a.doc) === text(b.doc) && text(b.doc) === text(c), 20_000)).toBe(true)
  } finally {
    for (const o of opened) o.close()
    await hub.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}, 90_000)

test("a WebSocket peer link between two Node processes (one listens) syncs a Y.Doc both ways", async () => {
  const children: ChildProcess[] = []
  const run = (args: string[], onLine: (line: string) => void) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/peer-node.ts", ...args], { cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: "" } })
    children.push(child)
    let buf = ""
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString()
      let i
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i))
        buf = buf.slice(i + 1)
      }
    })
    return child
  }
  try {
    let port = 0
    let left = ""
    let right = ""
    run(["listen", "left"], (line) => {
      if (line.startsWith("PORT ")) port = Number(line.slice(5))
      if (line.startsWith("TEXT ")) left = JSON.parse(line.slice(5)) as string
    })
    expect(await until(() => port > 0, 30_000)).toBe(true)
    run(["connect", String(port), "right"], (line) => {
      if (line.startsWith("TEXT ")) right = JSON.parse(line.slice(5)) as string
    })
    const want = (s: string) => s.includes("left|") && s.includes("right|") && s.includes("live|")
    expect(await until(() => want(left) && left === right, 30_000, 20)).toBe(true)
  } finally {
    for (const c of children) c.kill("SIGTERM")
  }
}, 90_000)
