/**
 * The crdt bench's board-with-descriptions row (bench/crdt-board.ts) measures what it claims:
 * its script really has replicas typing into one card at once, both systems end with the
 * script's board and every description whole and equal, and its check fails a run that lost
 * or held back a keystroke.
 */
import { descScript, type DescScript } from "../bench/crdt-board-script.js"
import { makeDescBoard, runDescBoard, type DescSys, type DescWorld } from "../bench/crdt-board.js"

const SIZES = { replicas: 5, rounds: 6, opsPerRound: 3, typists: 3, keysPerTypist: 8 }

const worlds: DescWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

const run = async (sys: DescSys, script: DescScript): Promise<DescWorld> => {
  const world = await makeDescBoard(sys, SIZES.replicas)
  worlds.push(world)
  await runDescBoard(world, script)
  return world
}

describe("crdt bench: board with concurrent descriptions", () => {
  const script = descScript(42, SIZES)

  test("the script types into one card from several replicas at once, deletes included", () => {
    const typed = script.typing.filter((r) => r.card !== undefined)
    expect(typed.length).toBeGreaterThan(0)
    for (const r of typed) expect(new Set(r.keys.map((k) => k.replica)).size).toBe(SIZES.typists)
    expect(typed.some((r) => r.keys.some((k) => k.key.t === "del"))).toBe(true)
    expect(script.keystrokes).toBe(typed.length * SIZES.typists * SIZES.keysPerTypist)
  })

  test("Canon and Yjs end with the same cards and every description whole and equal on every replica", async () => {
    const ends = new Map<DescSys, { cards: string; lengths: string }>()
    for (const sys of ["canon", "yjs"] as const) {
      const world = await run(sys, script)
      expect(() => world.verify(script)).not.toThrow()
      const cards = [...world.cards(0)].sort((a, b) => (a[0] < b[0] ? -1 : 1))
      const lengths = cards.map(([id]) => [id, script.typed.has(id) ? world.texts(id).map((t) => t.length) : []])
      ends.set(sys, { cards: JSON.stringify(cards), lengths: JSON.stringify(lengths) })
    }
    expect(ends.get("canon")).toEqual(ends.get("yjs"))
    // Some description that survives to the end has text in it.
    expect([...script.lengths.values()].some((n) => n > 0)).toBe(true)
  })

  test.each(["canon", "yjs"] as const)("%s: the check fails when a replica's keystroke is not delivered", async (sys) => {
    const world = await run(sys, script)
    const [card] = [...script.lengths].find(([id, n]) => script.typed.has(id) && n > 0)!
    await world.type(1, card, { t: "ins", pos: 0, text: "x" })
    expect(() => world.verify(script)).toThrow(/benchmark sanity check failed/)
  })
})
