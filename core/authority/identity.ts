/**
 * Durable client identity: a connection that claims a clientId proves it.
 *
 * Every clientId is visible to every reader of a document (entries carry it), so a claim
 * alone proves nothing. A client makes a random secret together with its clientId and keeps
 * both in its storage; its hellos carry the secret. The hub stores only a hash of it, durably,
 * at first contact (so a hub restart changes nothing) and refuses any later hello for that
 * clientId whose secret does not match. An id Canon makes is derived from its secret
 * (core/client-id.ts), so even with no record (a hub restored from an older backup) only its
 * secret proves it; other ids are trusted at first contact.
 *
 * Why the client makes the secret rather than the hub: a secret issued by the hub in its
 * welcome would be lost if the client crashed before storing it, locking the client out of
 * its own id with an outbox it can no longer send. A secret made and stored with the clientId
 * has no such window; a hub that crashes before storing the hash simply registers it again.
 *
 * With an `authenticate` hook the binding clientId -> principal is what matters, and it is
 * durable too: a clientId belongs to the first principal that used it, forever (one recorded
 * before the hub had a hook, as anonymous, is bound to the first user signed in on that device). The same
 * principal may use its clientId from a new device (a new secret): that is a new
 * *incarnation*, recorded so the document's exactly-once table can tell a retry of the old
 * device from a new command of the new one (see client-table.ts).
 */
import type { AuthorityStore } from "../store/authority-store.js"
import type { Identity } from "../store/records.js"
import { sha256, sha256Hex } from "../sha256.js"
import { SELF_CERTIFYING_ID, clientIdOfDigest, clientIdPreimage } from "../client-id.js"
import { ANONYMOUS } from "./auth.js"

/** Secrets are random strings the client made; anything shorter is not worth checking. */
export const MIN_SECRET_CHARS = 16
export const MAX_SECRET_CHARS = 256
/** Incarnations remembered per clientId (devices of one principal sharing a clientId). */
const MAX_INCARNATIONS = 64
/** Identities kept in memory; older ones are read again from storage when they return. */
const CACHE_SIZE = 50_000

export type Proof =
  | { readonly ok: true; readonly incarnation: number }
  /** `rate-limited`: a new identity past the hub's bound (retry later); otherwise the claim is refused. */
  | { readonly ok: false; readonly message: string; readonly rateLimited?: true }

const SHUTTING_DOWN: Proof = { ok: false, message: "The hub is shutting down; connect again in a moment." }

/** SHA-256 of the secret, domain-separated. */
export const hashSecret = (secret: string): string => sha256Hex(new TextEncoder().encode(`canon-client-secret:${secret}`))

export class IdentityRegistry {
  private readonly cache = new Map<string, Identity>()

  private remember(clientId: string, identity: Identity): void {
    this.cache.delete(clientId)
    this.cache.set(clientId, identity)
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!)
  }
  /** One proof per clientId at a time: two first contacts must not both register. */
  private readonly lanes = new Map<string, Promise<unknown>>()

  /** Set by `close`: no identity is recorded any more. */
  private closed = false

  constructor(private readonly store: AuthorityStore) {}

  /**
   * The hub closes: no identity is recorded from now on, and this resolves once the proofs in
   * flight are done, so a closed hub writes nothing more (a hello read from storage as the hub
   * closed registered its client after close() resolved: the simulator's quiet check).
   */
  async close(): Promise<void> {
    this.closed = true
    await Promise.allSettled([...this.lanes.values()])
  }

  /**
   * Checks (and on first contact records) that `secret` proves `clientId` for `principal`.
   * `principals` says whether principals are real users (an authenticate hook is set): then a
   * new secret from the owning principal is a new incarnation instead of an impostor.
   * `mayRegister` is asked before a new identity is recorded (the hub's bound on them).
   */
  prove(clientId: string, secret: string | undefined, principal: string, principals: boolean, mayRegister: () => boolean = () => true): Promise<Proof> {
    const prev = this.lanes.get(clientId) ?? Promise.resolve()
    const next = prev.then(() => this.proveNow(clientId, secret, principal, principals, mayRegister))
    const settled = next.catch(() => undefined)
    this.lanes.set(clientId, settled)
    void settled.then(() => {
      if (this.lanes.get(clientId) === settled) this.lanes.delete(clientId)
    })
    return next
  }

  private async proveNow(clientId: string, secret: string | undefined, principal: string, principals: boolean, mayRegister: () => boolean): Promise<Proof> {
    if (secret === undefined || secret.length < MIN_SECRET_CHARS || secret.length > MAX_SECRET_CHARS) {
      return { ok: false, message: `Client ${clientId} did not prove its id: hellos must carry the client's secret (${MIN_SECRET_CHARS}-${MAX_SECRET_CHARS} characters). Update the Canon client.` }
    }
    if (this.closed) return SHUTTING_DOWN
    const hash = hashSecret(secret)
    let known = this.cache.get(clientId) ?? (await this.store.identity(clientId))
    // Closed while reading: nothing is recorded.
    if (this.closed) return SHUTTING_DOWN
    if (known === undefined) {
      // Nothing recorded (a new client, or a hub restored from an older backup): an id made
      // from its secret is proved by the secret alone, whoever says it first.
      if (SELF_CERTIFYING_ID.test(clientId) && clientIdOfDigest(sha256(clientIdPreimage(secret))) !== clientId) {
        return { ok: false, message: `Client id ${clientId} is made from its client's secret (every id of the form c.<16 characters> is) and this hello's secret does not make it. A client that lost its storage must use a new client id: omit \`clientId\` and Canon makes one.` }
      }
      if (!mayRegister()) return { ok: false, rateLimited: true, message: "Too many new clients from here at once; try again in a few seconds." }
      known = { principal, incarnations: [{ incarnation: 1, secretHash: hash }] }
      await this.store.putIdentity(clientId, known)
      this.remember(clientId, known)
      return { ok: true, incarnation: 1 }
    }
    this.remember(clientId, known)
    const match = known.incarnations.find((i) => i.secretHash === hash)
    if (known.principal !== principal) {
      // The device itself (its secret matches) after the hub's authentication changed: a hook
      // added to a hub that recorded everyone as anonymous binds the id to the user now signed
      // in on it; a hub without a hook has no users to tell apart. Else the id is another user's.
      // Only the device of its first contact: a hub without a hook records no other incarnation,
      // and one a hook's own "anonymous" principal added (a guest) must not take the id.
      const sameDevice = match !== undefined && (!principals || (known.principal === ANONYMOUS.id && match.incarnation === 1))
      if (!sameDevice) {
        return { ok: false, message: `Client id ${clientId} belongs to another user; a client id cannot be shared. Let Canon make a new one (omit \`clientId\`).` }
      }
      if (principals) {
        if (this.closed) return SHUTTING_DOWN
        // The other devices were the anonymous principal's, not this user's.
        const bound: Identity = { principal, incarnations: [match] }
        await this.store.putIdentity(clientId, bound)
        this.remember(clientId, bound)
      }
      return { ok: true, incarnation: match.incarnation }
    }
    if (match !== undefined) return { ok: true, incarnation: match.incarnation }
    // No users to tell apart: no hook, or a hook's principal "anonymous", the one every client
    // of a hub without a hook was recorded under (its guests would be new devices of each).
    if (!principals || principal === ANONYMOUS.id) {
      return { ok: false, message: `Client id ${clientId} is registered to another device (its secret does not match). A client that lost its storage must use a new client id: omit \`clientId\` and Canon makes one.` }
    }
    if (this.closed) return SHUTTING_DOWN
    // Each is a durable record's rewrite and weighs on the cache: bounded as new identities are.
    if (!mayRegister()) return { ok: false, rateLimited: true, message: "Too many new devices at once; try again in a few seconds." }
    const incarnation = Math.max(0, ...known.incarnations.map((i) => i.incarnation)) + 1
    const updated: Identity = { principal, incarnations: [...known.incarnations, { incarnation, secretHash: hash }].slice(-MAX_INCARNATIONS) }
    await this.store.putIdentity(clientId, updated)
    this.remember(clientId, updated)
    return { ok: true, incarnation }
  }
}
