/**
 * Child process of test/codec-session-heap.test.ts (run with --expose-gc): fills a fresh codec
 * session with distinct docIds of each byte length given, one length at a time, each until
 * the session refuses one, and prints one JSON line per length: the heap it held after a full
 * collection, how many it took, why it stopped, and the session's own count. A fresh process,
 * so a collection's time and the heap it measures are this session's, not those of the files
 * a jest worker ran before (there, two forced collections per measure took seconds each).
 */
import { CodecSession, decodeClientMessage } from "../../core/internal.js"
import { MAX_SESSION_BYTES } from "../../core/protocol/codec-shared.js"
import { subscribeFrame } from "./hostile-frames.js"
import { Todo } from "./machines.js"

/** Todo as a subscribe names it, its fingerprint taken once (the getter describes the machine's commands again at every read). */
const todo = { name: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint }

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with --expose-gc")
const heap = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** More than MAX_CHANNELS (65,536): the session's own limits end the fill, never this bound. */
const BOUND = 70_000

export interface Filled {
  readonly bytes: number
  readonly held: number
  readonly taken: number
  /** The session's refusal that ended the fill (undefined: the loop bound did). */
  readonly refusal: string | undefined
  readonly sessionBytes: number
  readonly firstChannel: number | undefined
  readonly budget: number
}

/**
 * The codec keeps the session of the frame it last decoded (codec-shared.ts `session`): a frame
 * decoded with an empty session lets the one filled before go, so it is not in `before`.
 */
const forgetLastSession = () => decodeClientMessage(new Uint8Array(0), { version: 2, session: new CodecSession() })

const fill = (bytes: number): Filled => {
  forgetLastSession()
  const before = heap()
  const session = new CodecSession()
  let taken = 0
  let refusal: string | undefined
  for (let i = 0; i < BOUND; i++) {
    const docId = `${i.toString(36)}:`.padEnd(bytes, "x")
    const d = decodeClientMessage(subscribeFrame(docId, todo), { version: 2, session })
    if (d.ok !== true) {
      refusal = JSON.stringify(d).slice(0, 200)
      break
    }
    taken++
  }
  const held = heap() - before
  return { bytes, held, taken, refusal, sessionBytes: session.bytes, firstChannel: session.channelOf(`${(0).toString(36)}:`.padEnd(bytes, "x")), budget: MAX_SESSION_BYTES }
}

for (const arg of process.argv.slice(2)) console.log(JSON.stringify(fill(Number(arg))))
