/**
 * `canon/schema`: machine versions. `evolve(prev, { version, commands, migrateState, upcast,
 * downcast })` declares the next version of a machine; a hub running the newest version
 * serves apps of every version in the history (README, "Machine versions").
 *
 * @example
 * ```ts
 * import * as Schema from "effect/Schema"
 * import { defineMachine } from "canon"
 * import { evolve } from "canon/schema"
 *
 * const CounterV1 = defineMachine({
 *   name: "counter", version: 1, initial: () => ({ n: 0 }),
 *   commands: { add: { args: Schema.Struct({ by: Schema.Number }), apply: (s, a) => { s.n += a.by } } },
 * })
 * // v2 counts in cents: the state and the command change, old commands are converted.
 * export const Counter = evolve(CounterV1, {
 *   version: 2,
 *   migrateState: (s) => ({ cents: s.n * 100 }),
 *   commands: { addCents: { args: Schema.Struct({ cents: Schema.Number }), apply: (s: { cents: number }, a) => { s.cents += a.cents } } },
 *   upcast: { add: (a) => ({ name: "addCents", args: { cents: a.by * 100 } }) },
 *   downcast: { addCents: (a) => (a.cents % 100 === 0 ? { name: "add", args: { by: a.cents / 100 } } : undefined) },
 * })
 * ```
 */
export { evolve, historyOf } from "./versions.js"
export type { EvolveDef, MachineHistory, MigrationContext, Cmd, CmdOf, Converted } from "./versions.js"
