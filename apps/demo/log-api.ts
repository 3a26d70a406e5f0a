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
/** Arguments shown per entry, encoded as JSON; longer ones are cut to a preview. */
const MAX_ARGS_CHARS = 1024

/** Arguments as the devtools show them: bytes as their size (JSON would write each byte as a key), long ones as a preview. */
const preview = (args: unknown): unknown => {
  const json = JSON.stringify(args, (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: v.length } : v)) ?? "null"
  return json.length <= MAX_ARGS_CHARS ? JSON.parse(json) : { preview: json.slice(0, MAX_ARGS_CHARS), chars: json.length }
}

export const logApi = async (url: URL, res: http.ServerResponse, storage: KVStore): Promise<void> => {
  const docId = url.searchParams.get("doc") ?? ""
  const limit = Math.max(1, Math.min(MAX_LIMIT, Number(url.searchParams.get("limit") ?? 100) || 100))
  const send = (status: number, body: unknown) => {
    const json = JSON.stringify(body)
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json), "Cache-Control": "no-store" })
    res.end(json)
  }
  if (!/^board\/[\w-]{1,64}$/.test(docId)) return send(400, { error: "Pass doc=board/NAME." })
  try {
    // Reads only: no open(), which could write the store's format record.
    const store = new AuthorityStore(storage)
    const head = await store.head(docId)
    if (head === undefined) return send(200, { head: null, entries: [], checkpoints: [] })
    // Entries at or below the compaction horizon are gone (a snapshot holds them). Read from
    // the store: asking the hub for the document would load and replay it for any caller.
    const compactedThrough = await store.snapshots.horizon(docId)
    const entries = await store.entries(docId, Math.max(compactedThrough, head.seq - limit), limit)
    const checkpoints = (await store.checkpoints(docId)).slice(-20)
    // The newest entries first, until the answer's budget is spent.
    const rows: unknown[] = []
    let bytes = 0
    for (let i = entries.length - 1; i >= 0 && bytes < MAX_RESPONSE_BYTES; i--) {
      const e = entries[i]!
      const row = { seq: e.seq, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: e.name, args: preview(e.args) }
      bytes += JSON.stringify(row).length
      rows.push(row)
    }
    send(200, {
      head: { seq: head.seq, machine: head.machine, version: head.version, lastTime: head.lastTime },
      compactedThrough,
      entries: rows.reverse(),
      checkpoints: checkpoints.map((c) => ({ seq: c.seq, hash: c.hash })),
    })
  } catch (e) {
    send(500, { error: e instanceof Error ? e.message : String(e) })
  }
}
