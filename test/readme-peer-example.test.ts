/**
 * The README's peer-link example ("### Peer links without a hub"), as printed, run with tsx
 * beside a second tab on the same channels (another session in the same process, which
 * BroadcastChannel reaches): it syncs, and the process exits by itself. As first printed it
 * created its links inline, so nothing could close them and the process never exited (a
 * newcomer following the README; `session.destroy()` and detaching leave a link open).
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../", import.meta.url))

/** The first ```ts block after the peer links heading. */
const peerBlock = (): string => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("\n### Peer links without a hub"))
  const match = /```ts\n([\s\S]*?)\n```/.exec(section)
  if (match === null) throw new Error("The README has no ```ts block under its peer links heading.")
  return match[1]!
}

// The other tab: answers on both channels, and closes its own links once the example is done.
const otherTab = `
import * as OtherY from "yjs"
import * as OtherA from "@automerge/automerge"
import { AutomergeReplica as OtherReplica, YSyncSession as OtherSession, broadcastChannelLink as otherLink } from "canon/peer"
const otherNotes = otherLink("notes")
const otherList = otherLink("list")
const otherDoc = new OtherY.Doc()
otherDoc.getText("t").insert(0, "from the other tab")
const otherSession = new OtherSession(otherDoc, otherNotes)
const otherReplica = new OtherReplica(OtherA.from({ items: [] as string[] }))
const otherDetach = otherReplica.attach(otherList)
`
const done = `
console.log("synced:", ydoc.getText("t").toString())
otherSession.destroy()
otherDetach()
otherNotes.close()
otherList.close()
`

let file: string

beforeAll(() => {
  mkdirSync(join(ROOT, "test/artifacts"), { recursive: true })
  file = join(ROOT, "test/artifacts", `readme-peer-example-${process.pid}.ts`)
  writeFileSync(file, otherTab + peerBlock() + done)
})

afterAll(() => {
  rmSync(file, { force: true })
})

test("the README's peer example syncs with another tab and exits by itself", () => {
  const r = spawnSync(process.execPath, ["--conditions=canon-source", "--import", join(ROOT, "node_modules/tsx/dist/esm/index.mjs"), file], {
    cwd: ROOT, encoding: "utf8", timeout: 30_000, env: { ...process.env, NODE_OPTIONS: "" },
  })
  expect({ stderr: r.stderr, stdout: r.stdout, status: r.status, signal: r.signal }).toEqual({ stderr: "", stdout: "synced: from the other tab\n", status: 0, signal: null })
})
