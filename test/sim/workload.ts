/**
 * What honest replicas submit: per machine, a seeded mix of ordinary commands and the
 * mistakes real apps make (aliasing, non-plain values, commands that write then reject).
 */
import type { Machine } from "../../core/index.js"
import { Big, STAMP_KINDS, SimText, SimTextV2, TodoPlus, type BigState } from "./machines.js"

export type Rng = () => number

export const pick = <T>(rng: Rng, xs: ReadonlyArray<T>): T => xs[Math.floor(rng() * xs.length)]!

export const TODO_IDS = ["a", "b", "c", "d", "e", "f", "g", "h"]

/** A string of `n` characters, cheap to make: a seeded 64-character chunk repeated. */
export const blobText = (rng: Rng, n: number): string => {
  let chunk = ""
  for (let i = 0; i < 64; i++) chunk += String.fromCharCode(97 + Math.floor(rng() * 26))
  return chunk.repeat(Math.ceil(n / 64)).slice(0, n)
}

/** With `appBugs`, some commands alias or write non-plain values (app code the engine must contain). */
export const todoCommand = (rng: Rng, appBugs = true): [string, unknown] => {
  const r = appBugs ? rng() : rng() * 0.89
  const id = pick(rng, TODO_IDS)
  if (r < 0.25) return ["add", { id, title: `t${Math.floor(rng() * 100)}` }]
  if (r < 0.37) return ["toggle", { id }]
  // A third of the titles hold an emoji where the machine's rejection cuts them (drawn from
  // the number: no extra draw, so every seed's world stays what it was).
  if (r < 0.47) return ["rename", { id, title: ((n) => `r${n}${n % 3 === 0 ? "😀" : ""}`)(Math.floor(rng() * 100)) }]
  if (r < 0.55) return ["remove", { id }]
  if (r < 0.67) return ["patch", { id, fields: { [pick(rng, ["color", "note", "prio"])]: pick(rng, ["red", 3, null, ["x"], { deep: true }]) } }]
  if (r < 0.77) return ["note", { text: `n${Math.floor(rng() * 1000)}` }]
  if (r < 0.82) return ["roll", {}]
  if (r < 0.87) return ["bump", { id }]
  if (r < 0.89) return ["boom", {}]
  if (r < 0.93) return ["alias", { from: id, to: pick(rng, TODO_IDS) }]
  if (r < 0.95) return ["pin", { id }]
  return ["stamp", { id, kind: pick(rng, STAMP_KINDS) }]
}

/**
 * Arguments of `rename` an app must be refused locally for (invalid-args), never thrown at:
 * a wrong type, or values that are not plain data (a getter or proxy that throws, a bigint).
 * `u` in [0, 1) picks one (a draw the caller already made: no draw of its own).
 */
export const invalidArgs = (u: number): unknown => {
  const k = Math.floor(u * 4)
  if (k === 1) return Object.defineProperty({ title: "t" }, "id", { get: () => { throw new Error("a getter that throws") }, enumerable: true })
  if (k === 2) return new Proxy({}, { get: () => { throw new Error("a proxy that throws") }, ownKeys: () => { throw new Error("a proxy that throws") } })
  if (k === 3) return { id: 7n, title: "t" }
  return { id: 7 }
}

export interface BigPlan {
  /** Bytes the document should reach by putting new blobs; after that it churns. */
  readonly targetBytes: number
  readonly minBlob: number
  readonly maxBlob: number
}

export const bigCommand = (rng: Rng, view: BigState, plan: BigPlan): [string, unknown] => {
  const ids = Object.keys(view.blobs)
  let size = 0
  for (const id of ids) size += view.blobs[id]!.length
  const n = plan.minBlob + Math.floor(rng() * (plan.maxBlob - plan.minBlob + 1))
  if (size < plan.targetBytes || ids.length === 0) return ["put", { id: `b${ids.length}-${Math.floor(rng() * 1e6)}`, text: blobText(rng, n) }]
  const r = rng()
  const id = pick(rng, ids)
  if (r < 0.35) return ["put", { id, text: blobText(rng, n) }]
  if (r < 0.5) return ["drop", { id }]
  return ["touch", { id }]
}

/** A valid command of `machine` for a replica whose view is `view`. */
export const honestCommand = (rng: Rng, machine: Machine<any, any>, view: unknown, plan: BigPlan, appBugs: boolean): [string, unknown] => {
  if (machine === TodoPlus) return todoCommand(rng, appBugs)
  if (machine === Big) return bigCommand(rng, view as BigState, plan)
  // Its text is typed (crdt-text.ts); its one ordered command draws nothing.
  if (machine === SimText || machine === SimTextV2) return ["touch", {}]
  const names = [...machine.compiled.keys()]
  return [pick(rng, names), {}]
}

/** A command that is certainly valid and harmless, for the hostile and forging clients. */
export const plainCommand = (rng: Rng, machine: Machine<any, any>): [string, unknown] => {
  if (machine === TodoPlus) return ["note", { text: `x${Math.floor(rng() * 1000)}` }]
  if (machine === Big) return ["touch", { id: "forged" }]
  if (machine === SimText || machine === SimTextV2) return ["touch", {}]
  return [[...machine.compiled.keys()][0]!, {}]
}
