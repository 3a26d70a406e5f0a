/**
 * The real `canon serve` (apps/cli/canon.mjs, a child process on a temp LevelDB directory)
 * serving whole CRDT documents to stock clients: a y-websocket WebsocketProvider pair (text
 * and awareness) on /yjs/<room> and an automerge-repo Repo pair over
 * @automerge/automerge-repo-network-websocket on /automerge. The child is then killed with
 * SIGKILL (no shutdown code runs) and restarted on the same directory and port: the
 * documents come back from disk, to the surviving clients and to fresh ones.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { Repo, type DocHandle } from "@automerge/automerge-repo"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { sleep, until } from "./support/ws.js"
import { encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/protocol.js"

interface Served {
  readonly child: ChildProcess
  readonly port: number
  readonly exited: Promise<void>
  output(): string
}

/** Starts `canon serve` on `port` (0: any) and waits for its banner (bounded: 30 s). */
const serve = (data: string, port: number): Promise<Served> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["apps/cli/canon.mjs", "serve", "--data", data, "--port", String(port), "--host", "127.0.0.1"], {
      cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: "" },
    })
    let out = ""
    let done = false
    const exited = new Promise<void>((r) => child.once("exit", () => r()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`canon serve did not start within 30 s:\n${out}`))
    }, 30_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const m = /Canon hub on http:\/\/127\.0\.0\.1:(\d+)[\s\S]*data: /.exec(out)
      if (m !== null && !done) {
        done = true
        clearTimeout(timer)
        resolve({ child, port: Number(m[1]), exited, output: () => out })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      if (!done) reject(new Error(`canon serve exited (${code ?? signal}) before its banner:\n${out}`))
    })
  })

const kill = async (s: Served, signal: NodeJS.Signals): Promise<void> => {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return
  const hard = setTimeout(() => s.child.kill("SIGKILL"), 10_000)
  s.child.kill(signal)
  await s.exited
  clearTimeout(hard)
}

const providers: WebsocketProvider[] = []
const provider = (port: number, room: string): WebsocketProvider => {
  const p = new WebsocketProvider(`ws://127.0.0.1:${port}/yjs`, room, new Y.Doc(), {
    WebSocketPolyfill: WebSocket as never, maxBackoffTime: 200,
    // Two providers of one room in one process would otherwise sync over BroadcastChannel.
    disableBc: true,
  })
  providers.push(p)
  return p
}

interface Note {
  text: string
}
const repos: Repo[] = []
const adapters: StoppableClientAdapter[] = []
const repo = (port: number, peerId: string): Repo => {
  const adapter = new StoppableClientAdapter(`ws://127.0.0.1:${port}/automerge`, 200)
  adapters.push(adapter)
  const r = new Repo({ network: [adapter], peerId: peerId as never })
  repos.push(r)
  return r
}
const text = (h: DocHandle<Note>): string | undefined => h.doc()?.text

/**
 * Waits (bounded) until the hub answers a raw request for the document with data, not
 * doc-unavailable: a Repo that asked too early remembers the document as unavailable.
 */
const hubHas = async (port: number, documentId: string): Promise<boolean> => {
  const end = Date.now() + 15_000
  while (Date.now() < end) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/automerge`)
    const answer = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), 3_000)
      ws.on("error", () => resolve("error"))
      ws.on("message", (d) => {
        const m = decodeRepoMessage(new Uint8Array(d as Buffer))
        if (m?.type === "peer") {
          const [, request] = A.generateSyncMessage(A.init(), A.initSyncState())
          ws.send(encodeRepoMessage({ type: "request", senderId: "probe", targetId: m.senderId, documentId, data: request! }))
        } else if (m?.type === "sync" || m?.type === "doc-unavailable") {
          clearTimeout(timer)
          resolve(m.type)
        }
      })
      ws.on("open", () => ws.send(encodeRepoMessage({ type: "join", senderId: "probe", peerMetadata: {}, supportedProtocolVersions: ["1"] })))
    })
    ws.close()
    if (answer === "sync") return true
    await sleep(100)
  }
  return false
}

let dir: string
let hub: Served | undefined

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "canon-cli-crdt-"))
})

afterEach(async () => {
  // A stock adapter throws if shut down mid-connect: let each finish (re)connecting first.
  await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === WebSocket.OPEN), 10_000)
  for (const r of repos.splice(0)) await r.shutdown().catch(() => {})
  adapters.splice(0)
  // A Y.Doc's awareness keeps an interval running until the doc itself is destroyed.
  for (const p of providers.splice(0)) {
    p.destroy()
    p.doc.destroy()
  }
  if (hub !== undefined) await kill(hub, "SIGTERM")
  hub = undefined
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

test("y-websocket: a provider pair syncs text and awareness through canon serve; after SIGKILL and a restart the text comes back", async () => {
  hub = await serve(join(dir, "yjs"), 0)
  expect(hub.output()).not.toMatch(/whole CRDT documents are off/)
  const port = hub.port
  const a = provider(port, "notes")
  const b = provider(port, "notes")
  expect(await until(() => a.synced && b.synced, 10_000)).toBe(true)
  a.doc.getText("t").insert(0, "hello")
  expect(await until(() => b.doc.getText("t").toString() === "hello", 5_000)).toBe(true)
  b.doc.getText("t").insert(5, " world")
  expect(await until(() => a.doc.getText("t").toString() === "hello world", 5_000)).toBe(true)
  a.awareness.setLocalState({ user: "ann", cursor: 3 })
  expect(await until(() => (b.awareness.getStates().get(a.doc.clientID) as { user?: string } | undefined)?.user === "ann", 5_000)).toBe(true)

  // Many small edits, so the hub holds a log (and compacts past its threshold), not one update.
  const t = a.doc.getText("t")
  for (let i = 0; i < 300; i++) t.insert(t.length, String.fromCharCode(97 + (i % 26)))
  const before = t.toString()
  expect(await until(() => b.doc.getText("t").toString() === before, 10_000)).toBe(true)
  // b saw every edit relayed: the hub confirmed them (it relays what it committed).
  const killed = hub
  await kill(killed, "SIGKILL")
  expect(killed.child.signalCode).toBe("SIGKILL")
  expect(await until(() => !a.wsconnected && !b.wsconnected, 5_000)).toBe(true)

  hub = await serve(join(dir, "yjs"), port)
  // A fresh provider knows nothing: whatever it gets came from the restarted hub's disk.
  const fresh = provider(port, "notes")
  expect(await until(() => fresh.synced && fresh.doc.getText("t").toString() === before, 15_000)).toBe(true)
  // The surviving pair reconnect by themselves and keep syncing, awareness included.
  expect(await until(() => a.synced && b.synced && a.wsconnected && b.wsconnected, 15_000)).toBe(true)
  b.doc.getText("t").insert(0, "after:")
  const after = "after:" + before
  expect(await until(() => a.doc.getText("t").toString() === after && fresh.doc.getText("t").toString() === after, 10_000)).toBe(true)
  b.awareness.setLocalState({ user: "bob" })
  expect(await until(() => (fresh.awareness.getStates().get(b.doc.clientID) as { user?: string } | undefined)?.user === "bob", 5_000)).toBe(true)
}, 90_000)

test("automerge-repo: a Repo pair syncs a document through canon serve; after SIGKILL and a restart it loads by URL", async () => {
  hub = await serve(join(dir, "am"), 0)
  const port = hub.port
  const r1 = repo(port, "peer-1")
  const h1 = r1.create<Note>({ text: "hello" })
  expect(await hubHas(port, h1.documentId)).toBe(true)
  const r2 = repo(port, "peer-2")
  const h2 = await r2.find<Note>(h1.url)
  expect(await until(() => text(h2) === "hello", 10_000)).toBe(true)
  h2.change((d) => A.splice(d, ["text"], 5, 0, " world"))
  h1.change((d) => A.splice(d, ["text"], 0, 0, ">> "))
  expect(await until(() => text(h1) === ">> hello world" && text(h2) === ">> hello world", 10_000)).toBe(true)
  for (let i = 0; i < 50; i++) h1.change((d) => A.splice(d, ["text"], d.text.length, 0, String(i % 10)))
  const before = text(h1)!
  expect(await until(() => text(h2) === before, 10_000)).toBe(true)

  const killed = hub
  // The survivors reconnect on their own: to a refused port while the hub is down, then to
  // the restarted hub, which closes them with 1013 until it is ready (never an HTTP refusal,
  // which the stock adapter throws as an uncaught exception).
  await kill(killed, "SIGKILL")
  expect(killed.child.signalCode).toBe("SIGKILL")
  hub = await serve(join(dir, "am"), port)

  // A raw probe with an empty document gets data: the restarted hub loaded it from disk.
  expect(await hubHas(port, h1.documentId)).toBe(true)
  // A new repo (empty storage, new peer id) finds the document by URL: only the hub has it.
  const r3 = repo(port, "peer-3")
  const h3 = await r3.find<Note>(h1.url)
  expect(await until(() => text(h3) === before, 10_000)).toBe(true)
  // The survivors reconnect and keep syncing through the restarted hub.
  h2.change((d) => A.splice(d, ["text"], 0, 0, "after:"))
  expect(await until(() => text(h1) === "after:" + before && text(h3) === "after:" + before, 15_000)).toBe(true)
}, 90_000)
