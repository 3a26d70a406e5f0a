/**
 * Loads what a hub serves from a module of the user's: every export that is a machine made
 * with `defineMachine` (or an array of them), and the optional `authenticate` and
 * `authorize` hooks (core/authority/auth.ts). Without a module: the demo's Board, no hooks.
 */
import { pathToFileURL } from "node:url"
import { resolve } from "node:path"
import type { Authenticate, Authorize, Machine } from "../../core/index.js"
import { Board } from "../demo/board.js"

export interface ServedModule {
  readonly machines: ReadonlyArray<Machine<any, any>>
  readonly authenticate?: Authenticate | undefined
  readonly authorize?: Authorize | undefined
}

const isMachine = (v: unknown): v is Machine<any, any> =>
  typeof v === "object" && v !== null && "compiled" in v && "name" in v && "version" in v && "initial" in v

const hook = <F>(mod: Record<string, unknown>, name: string, module: string): F | undefined => {
  const v = mod[name]
  if (v === undefined) return undefined
  if (typeof v !== "function") throw new Error(`${module} exports "${name}", but it is a ${v === null ? "null" : typeof v}, not a function: export ${name}(...) or nothing by that name.`)
  return v as F
}

export const loadModule = async (module: string | undefined): Promise<ServedModule> => {
  if (module === undefined) return { machines: [Board] }
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(resolve(module)).href)) as Record<string, unknown>
  } catch (e) {
    // The installed CLI runs on Node alone, which does not load TypeScript (Node 20).
    const code = (e as { code?: unknown }).code
    const hint = code === "ERR_UNKNOWN_FILE_EXTENSION" && /\.[mc]?ts$/.test(module)
      ? ": compile it to JavaScript (tsc) and pass the .js file."
      // A .ts or .js file under no "type": "module" is taken for CommonJS, which cannot import canon.
      : code === "ERR_REQUIRE_CYCLE_MODULE" || code === "ERR_REQUIRE_ESM"
        ? ": it is loaded as an ES module, so name it .mts (.mjs) or put it under a package.json with \"type\": \"module\"."
        : ""
    throw new Error(`Cannot load machines from ${module}: ${(e as Error).message}${hint}`)
  }
  const found = new Map<string, Machine<any, any>>()
  for (const v of Object.values(mod).flatMap((x) => (Array.isArray(x) ? x : [x]))) if (isMachine(v)) found.set(v.name, v)
  if (found.size === 0) throw new Error(`${module} exports no machine: export the results of defineMachine(...).`)
  return {
    machines: [...found.values()],
    authenticate: hook<Authenticate>(mod, "authenticate", module),
    authorize: hook<Authorize>(mod, "authorize", module),
  }
}

export const loadMachines = async (module: string | undefined): Promise<ReadonlyArray<Machine<any, any>>> => (await loadModule(module)).machines
