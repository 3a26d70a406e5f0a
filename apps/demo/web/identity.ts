/**
 * Who you are on the board: a name and a colour, made up on the first visit and kept in
 * localStorage (click your chip to change the name). Shared with others as presence, never
 * in the log.
 */
export interface Identity {
  readonly name: string
  readonly colour: string
}

/** What a person shares on a board: who they are and which card they are editing. */
export interface Presence extends Identity {
  readonly editing: string | null
}

const KEY = "canon-demo-identity"
export const COLOURS = ["#e03131", "#1971c2", "#2f9e44", "#f08c00", "#9c36b5", "#0c8599", "#d6336c", "#5f3dc4", "#66a80f", "#e8590c"]
const ADJECTIVES = ["Brave", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Jolly", "Kind", "Lucky", "Nimble", "Quiet", "Swift", "Witty"]
const ANIMALS = ["Otter", "Fox", "Heron", "Lynx", "Panda", "Robin", "Seal", "Tiger", "Wombat", "Yak", "Badger", "Koala", "Owl", "Hare"]

const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(Math.random() * xs.length)]!

const isIdentity = (x: unknown): x is Identity =>
  typeof x === "object" && x !== null && typeof (x as Identity).name === "string" && typeof (x as Identity).colour === "string" && (x as Identity).name.length > 0

export const loadIdentity = (): Identity => {
  try {
    const saved: unknown = JSON.parse(localStorage.getItem(KEY) ?? "null")
    if (isIdentity(saved)) return { name: saved.name.slice(0, 40), colour: saved.colour }
  } catch {
    // storage blocked or garbled: make a new one
  }
  const made = { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, colour: pick(COLOURS) }
  saveIdentity(made)
  return made
}

export const saveIdentity = (identity: Identity): void => {
  try {
    localStorage.setItem(KEY, JSON.stringify(identity))
  } catch {
    // private mode: the name lasts for this page only
  }
}

/** Another client's presence, if it is well formed (anything can arrive from the wire). */
export const asPresence = (x: unknown): Presence | undefined => {
  if (!isIdentity(x)) return undefined
  const editing = (x as { editing?: unknown }).editing
  return {
    name: x.name.slice(0, 40),
    colour: /^#[0-9a-fA-F]{3,8}$/.test(x.colour) ? x.colour : "#868e96",
    editing: typeof editing === "string" ? editing : null,
  }
}
