/**
 * A colour machine with two versions whose migrations, like an app's real ones, throw on
 * values their schema accepts: v1 `setRgb` takes any list of numbers, and its upcast throws on
 * one that is not three components; v2 `setColor` takes any string, and its downcast throws on
 * one that is not `#rrggbb`. The schema-*-throws tests aim Canon's containment of migration
 * code at them.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"
import { evolve, historyOf } from "../../core/schema/versions.js"

type S1 = { rgb: number[] }
type S2 = { hex: string }

export const parseHex = (hex: string): number[] => {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex)
  if (m === null) throw new Error(`Not a colour: ${hex}`)
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)]
}

export const toHex = (rgb: ReadonlyArray<number>): string => {
  if (rgb.length !== 3) throw new Error(`Not a colour: ${rgb.length} components`)
  return "#" + rgb.map((n) => n.toString(16).padStart(2, "0")).join("")
}

export const ColorV1 = defineMachine({
  name: "color",
  version: 1,
  initial: (): S1 => ({ rgb: [0, 0, 0] }),
  commands: { setRgb: { args: Schema.Struct({ rgb: Schema.Array(Schema.Number) }), apply: (s: S1, a) => { s.rgb = [...a.rgb] } } },
})

export const ColorV2 = evolve(ColorV1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ hex: s.rgb.length === 3 ? toHex(s.rgb) : "#000000" }),
  commands: { setColor: { args: Schema.Struct({ hex: Schema.String }), apply: (s: S2, a) => { s.hex = a.hex } } },
  upcast: { setRgb: (a) => ({ name: "setColor", args: { hex: toHex(a.rgb) } }) },
  downcast: { setColor: (a) => ({ name: "setRgb", args: { rgb: parseHex(a.hex) } }) },
})

/** v1 as the history holds it (what an app of v1 runs against a hub of v2). */
export const V1 = historyOf(ColorV2)!.at(1)
