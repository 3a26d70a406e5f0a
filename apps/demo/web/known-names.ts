/**
 * Names of people seen on boards, kept in the browser so an author who left still has a name.
 * A Map, never a plain object: a clientId is any string a peer picks, and `names["constructor"]`
 * on a plain object showed every user a function's source as a card's author. The most
 * recently seen MAX_NAMES are kept.
 */
const NAMES_KEY = "canon-demo-names"
export const MAX_NAMES = 500

/** The names stored in `storage` (localStorage); none if they are missing or not what this app wrote. */
export const knownNames = (storage: Pick<Storage, "getItem">): Map<string, string> => {
  try {
    const stored: unknown = JSON.parse(storage.getItem(NAMES_KEY) ?? "{}")
    if (stored === null || typeof stored !== "object" || Array.isArray(stored)) return new Map()
    return new Map(Object.entries(stored).filter((e): e is [string, string] => typeof e[1] === "string"))
  } catch {
    return new Map()
  }
}

/** Stores `names` (the last MAX_NAMES of them in insertion order; the oldest are dropped from the map too). */
export const rememberNames = (storage: Pick<Storage, "setItem">, names: Map<string, string>): void => {
  for (const id of names.keys()) {
    if (names.size <= MAX_NAMES) break
    names.delete(id)
  }
  try {
    storage.setItem(NAMES_KEY, JSON.stringify(Object.fromEntries(names)))
  } catch {
    // private mode, or full
  }
}
