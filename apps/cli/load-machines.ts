/**
 * Loads the machines a hub serves from a module of the user's (every export that is a
 * machine defined with `defineMachine`), or the demo's Board by default.
 */
import { pathToFileURL } from "node:url"
import { resolve } from "node:path"
import type { Machine } from "../../core/index.js"
import { Board } from "../demo/board.js"

const isMachine = (v: unknown): v is Machine<any, any> =>
  typeof v === "object" && v !== null && "compiled" in v && "name" in v && "version" in v && "initial" in v

export const loadMachines = async (module: string | undefined): Promise<ReadonlyArray<Machine<any, any>>> => {
  if (module === undefined) return [Board]
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(resolve(module)).href)) as Record<string, unknown>
  } catch (e) {
    throw new Error(`Cannot load machines from ${module}: ${(e as Error).message}`)
  }
  const found = new Map<string, Machine<any, any>>()
  for (const v of Object.values(mod).flatMap((x) => (Array.isArray(x) ? x : [x]))) if (isMachine(v)) found.set(v.name, v)
  if (found.size === 0) throw new Error(`${module} exports no machine: export the results of defineMachine(...).`)
  return [...found.values()]
}
