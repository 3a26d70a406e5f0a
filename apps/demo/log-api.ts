/**
 * `GET /api/log?doc=board/NAME&limit=N`: the demo's devtools read the document's log from
 * the hub: the head, the compaction horizon, the last N entries (seq, time, clientId, command, args) and the stored
 * checkpoints (seq, state hash). Read-only, from the store alone (the hub's documents stay as they were), JSON, never cached.
 */
import type http from "node:http"
import type { KVStore } from "../../core/index.js"
import { AuthorityStore } from "../../core/internal.js"

const MAX_LIMIT = 500
/** What one answer may weigh: a row per entry is what the devtools show, not megabytes of arguments. */
const MAX_RESPONSE_BYTES = 1 << 20
/**
 * Stored bytes one answer may read (a page more at most): arguments may be 256 KiB each, and
 * reading 500 of them took 0.7 s and 95 MB per request; 30 at once took the hub to its heap limit.
 */
export const MAX_READ_BYTES = 4 << 20
/** Entries read at a time, newest first, until a budget is spent. */
const PAGE = 8
/** Answers being prepared at once; one more is told to come back (503): the reads are the cost. */
export const MAX_CONCURRENT = 2
/** Arguments shown per entry, encoded as JSON; longer ones are cut to a preview. */
export const MAX_ARGS_CHARS = 1024

const CUT = Symbol("cut")

/**
 * Arguments as the devtools show them: bytes as their size (JSON would write each byte as a
 * key), and JSON text of at most `max` characters, written only that far (a 250 KB argument is
 * never stringified whole): `{ preview, cut: true }` when longer.
 */
export const previewArgs = (args: unknown, max = MAX_ARGS_CHARS): unknown => {
  let out = ""
  const put = (s: string): void => {
    out += s
    if (out.length > max) throw CUT
  }
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) return put(`{"bytes":${v.length}}`)
    if (typeof v === "string") return put(JSON.stringify(v.length > max ? v.slice(0, max + 1) : v))
    if (Array.isArray(v)) {
      put("[")
      for (let i = 0; i < v.length; i++) {
        if (i > 0) put(",")
        walk(v[i] ?? null)
      }
      return put("]")
    }
    if (v !== null && typeof v === "object") {
      put("{")
      let first = true
      for (const k in v) {
        const x = (v as Record<string, unknown>)[k]
        if (!Object.hasOwn(v, k) || x === undefined) continue
        if (!first) put(",")
        first = false
        put(`${JSON.stringify(k.length > max ? k.slice(0, max + 1) : k)}:`)
        walk(x)
      }
      return put("}")
    }
    put(JSON.stringify(v) ?? "null")
  }
  try {
    walk(args)
    return JSON.parse(out)
  } catch (e) {
    if (e !== CUT) throw e
    return { preview: out.slice(0, max), cut: true }
  }
}

let inFlight = 0

export const logApi = async (url: URL, res: http.ServerResponse, storage: KVStore): Promise<void> => {
  const docId = url.searchParams.get("doc") ?? ""
  const limit = Math.max(1, Math.min(MAX_LIMIT, Number(url.searchParams.get("limit") ?? 100) || 100))
  const send = (status: number, body: unknown) => {
    const json = JSON.stringify(body)
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json), "Cache-Control": "no-store" })
    res.end(json)
  }
  if (!/^board\/[\w-]{1,64}$/.test(docId)) return send(400, { error: "Pass doc=board/NAME." })
  if (inFlight >= MAX_CONCURRENT) {
    res.setHeader("Retry-After", "1")
    return send(503, { error: "The hub is answering other log requests; try again in a second." })
  }
  inFlight++
  try {
    // Reads only: no open(), which could write the store's format record.
    const store = new AuthorityStore(storage)
    const head = await store.head(docId)
    if (head === undefined) return send(200, { head: null, entries: [], checkpoints: [] })
    // Entries at or below the compaction horizon are gone (a snapshot holds them). Read from
    // the store: asking the hub for the document would load and replay it for any caller.
    let compactedThrough = await store.snapshots.horizon(docId)
    const checkpoints = await store.checkpoints(docId, 20)
    // The newest entries first, a page at a time, until the limit or a budget is spent.
    const rows: unknown[] = []
    const read = { bytes: 0 }
    let bytes = 0
    for (let top = head.seq; top > compactedThrough && rows.length < limit && bytes < MAX_RESPONSE_BYTES && read.bytes < MAX_READ_BYTES; ) {
      const from = Math.max(compactedThrough, top - Math.min(PAGE, limit - rows.length))
      let page
      try {
        page = await store.entries(docId, from, top - from, read)
      } catch (e) {
        // A compaction moved the horizon while we read: go on from where it is now.
        const now = await store.snapshots.horizon(docId)
        if (now <= compactedThrough) throw e
        compactedThrough = now
        continue
      }
      for (let i = page.length - 1; i >= 0; i--) {
        const e = page[i]!
        const row = { seq: e.seq, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: e.name, args: previewArgs(e.args) }
        bytes += JSON.stringify(row).length
        rows.push(row)
      }
      top = from
    }
    send(200, {
      head: { seq: head.seq, machine: head.machine, version: head.version, lastTime: head.lastTime },
      compactedThrough,
      entries: rows.reverse(),
      checkpoints: checkpoints.map((c) => ({ seq: c.seq, hash: c.hash })),
    })
  } catch (e) {
    send(500, { error: e instanceof Error ? e.message : String(e) })
  } finally {
    inFlight--
  }
}
