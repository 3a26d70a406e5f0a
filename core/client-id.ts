/**
 * Self-certifying client ids: a clientId that Canon makes is derived from the client's secret
 * (`c.` and 16 base-32 characters: the first 80 bits of SHA-256 of the secret), so the id
 * itself says which secret proves it. A hub then needs no record to refuse an impostor: a
 * hub restored from a backup older than a client's first hello, which has no record of that
 * id, still refuses whoever says the id first with a secret that does not make it (ids are
 * public: every reader of a document sees them). Ids of any other form (an app's own, or
 * one made before this) are trusted at first contact, as before.
 *
 * The client hashes through its runtime (`Runtime.digest`: WebCrypto in the system runtime),
 * so the browser bundle carries no SHA-256 of its own; a runtime without one (a page served
 * over plain http on a LAN address has no `crypto.subtle`) makes a random id instead.
 */
import { textEncoder } from "./bytes.js"

/** What a self-certifying id looks like; the hub checks any id of this form against its secret. */
export const SELF_CERTIFYING_ID = /^c\.[0-9a-v]{16}$/

/** The bytes whose SHA-256 makes a secret's id (domain-separated from the hub's secret hash). */
export const clientIdPreimage = (secret: string): Uint8Array => textEncoder.encode(`canon-client-id:${secret}`)

/** The id a secret makes, from the SHA-256 of `clientIdPreimage(secret)`. */
export const clientIdOfDigest = (digest: Uint8Array): string => {
  // 80 bits, 5 at a time, most significant first.
  let id = "c."
  let bits = 0
  let value = 0
  for (let i = 0; id.length < 18; ) {
    if (bits < 5) {
      value = (value << 8) | digest[i++]!
      bits += 8
    }
    bits -= 5
    id += ((value >>> bits) & 31).toString(32)
  }
  return id
}
