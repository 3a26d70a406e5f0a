/**
 * A turn of the event loop: timers and I/O waiting behind long work run now. Node's
 * setImmediate, where there is one: setTimeout(0) waits at least a millisecond, a second per
 * thousand slices. Shared by the engines that slice their work (Automerge decoding, Yjs
 * applies).
 */
export const turn: () => Promise<void> = typeof setImmediate === "function"
  ? () => new Promise((r) => setImmediate(r))
  : () => new Promise((r) => setTimeout(r, 0))
