/**
 * The content the `snapshots` suite's big documents hold, with no dependency on Canon (the
 * y-websocket server child loads this too, and nothing else of Canon's): notes of seeded
 * ASCII text by id. Canon's documents and the Yjs document of the join storm hold the same
 * ids and strings.
 */
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,"

/** 256 KiB of seeded ASCII: every note is a window of it (one byte per character in every encoding). */
const BASE = (() => {
  let x = 0x2545f491
  const out: string[] = []
  for (let i = 0; i < 256 << 10; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out.push(ALPHABET[(x >>> 0) % ALPHABET.length]!)
  }
  return out.join("")
})()

export const noteId = (i: number): string => `n${String(i).padStart(7, "0")}`

/** Note i's text, `bytes` long (ASCII), different from its neighbours'. */
export const noteText = (i: number, bytes: number): string => {
  const at = (i * 7919) % (BASE.length - bytes)
  return BASE.slice(at, at + bytes)
}

/** Notes of `bytesPerNote` that make a state of about `stateBytes` (canonical bytes: the text plus ~12 of id and headers). */
export const notesFor = (stateBytes: number, bytesPerNote: number): number => Math.ceil(stateBytes / (bytesPerNote + 12))

export const mib = (bytes: number): string => (bytes >= 1 << 20 ? `${+(bytes / (1 << 20)).toFixed(1)} MiB` : `${+(bytes / 1024).toFixed(1)} KiB`)
