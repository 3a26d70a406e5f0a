/**
 * Which version of the board machine this tab runs: v2 (the current app), or v1 with `?v=1`
 * in the URL, to see an old app beside a new one. Both versions are in the bundle (`evolve`
 * keeps the history); a v1 tab runs the v1 machine exactly as first released.
 */
import { Board } from "../board.js"
import { BoardV1 } from "../board-v1.js"

export type AppVersion = 1 | 2

export const appVersion = (): AppVersion => (new URLSearchParams(location.search).get("v") === "1" ? 1 : 2)

/** The board machine of this tab. Typed as v2: a v1 tab simply never sends v2's commands. */
export const boardMachine = (): typeof Board => (appVersion() === 1 ? (BoardV1 as unknown as typeof Board) : Board)

/** This page's address as the current version (the `v` parameter dropped, the board kept). */
export const currentVersionUrl = (): string => {
  const url = new URL(location.href)
  url.searchParams.delete("v")
  return url.href
}
