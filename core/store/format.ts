/**
 * The storage-format version key. A store written by a newer Canon refuses to open
 * (it might be misread); a fresh store is stamped with the current format.
 */
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import { canonError } from "../errors.js"
import type { KVStore } from "../ports/storage.js"
import { formatKey } from "./keys.js"

export const STORAGE_FORMAT = 1

export const ensureFormat = async (kv: KVStore): Promise<void> => {
  const raw = await kv.get(formatKey)
  if (raw === undefined) {
    await kv.batch([{ type: "put", key: formatKey, value: encodeCanonical(STORAGE_FORMAT) }])
    return
  }
  let version: unknown
  try {
    version = decodeCanonical(raw)
  } catch {
    version = undefined
  }
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw canonError("storage-corrupt", "The store's format key is unreadable; this is not a Canon store, or it is damaged.")
  }
  if (version > STORAGE_FORMAT) {
    throw canonError("storage-too-new", `The store was written by a newer Canon (format ${version}; this build reads up to ${STORAGE_FORMAT}). Upgrade Canon to open it.`)
  }
}
