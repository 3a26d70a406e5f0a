/**
 * `GET /api/log?doc=board/NAME&limit=N`: the demo's devtools read the document's log from
 * the hub: the head, the compaction horizon, the last N entries (seq, time, clientId, command, args) and the stored
 * checkpoints (seq, state hash). Read-only, JSON, never cached.
 */
import type http from "node:http"
import type { Hub, KVStore } from "../../core/index.js"
import { Board } from "./board.js"
import { AuthorityStore } from "../../core/internal.js"

const MAX_LIMIT = 500

export const logApi = async (url: URL, res: http.ServerResponse, hub: Hub, storage: KVStore): Promise<void> => {
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
    // Entries at or below the compaction horizon are gone (a snapshot holds them).
    const compactedThrough = (await hub.doc(docId, Board)).compactedThrough
    const entries = await store.entries(docId, Math.max(compactedThrough, head.seq - limit), limit)
    const checkpoints = (await store.checkpoints(docId)).slice(-20)
    send(200, {
      head: { seq: head.seq, machine: head.machine, version: head.version, lastTime: head.lastTime },
      compactedThrough,
      entries: entries.map((e) => ({ seq: e.seq, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: e.name, args: e.args })),
      checkpoints: checkpoints.map((c) => ({ seq: c.seq, hash: c.hash })),
    })
  } catch (e) {
    send(500, { error: e instanceof Error ? e.message : String(e) })
  }
}
