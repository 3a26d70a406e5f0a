/**
 * Who owns each automerge-repo peer id on the hub's route (endpoint.ts): the principal that
 * first joined with it. Two kinds of record:
 *
 * - Held: a peer id some open socket joined with. Never forgotten while a socket holds it,
 *   so another principal can never join with the peer id of a peer that is connected. Their
 *   number is bounded by the sockets (the WebSocket server's caps), not by `max`.
 * - Kept: a peer id no socket holds any more, remembered so that its owner's reconnect (a
 *   stock client reconnects with the same peer id) finds it still theirs. Each is charged to
 *   an account: the principal, or the client's address when there is no principal (no
 *   `authenticate` hook). An account keeps at most `perAccount` (its own oldest are
 *   forgotten first), and all of them at most `max`: past it, the oldest of the account
 *   keeping the most is forgotten. So one principal or address joining with fresh peer ids
 *   forgets only its own, and pushing out a record of someone keeping `n` takes `max / n`
 *   accounts.
 *
 * Every operation is O(1).
 */
export class PeerOwners {
  /** Peer ids open sockets hold: owner and how many sockets (a reconnect may overlap the old socket). */
  private readonly held = new Map<string, { readonly owner: string; sockets: number }>()
  /** Peer ids no socket holds: owner and the account they are charged to. */
  private readonly kept = new Map<string, { readonly owner: string; readonly account: string }>()
  /** Each account's kept peer ids, oldest first. */
  private readonly accounts = new Map<string, Set<string>>()
  /** Accounts by how many peer ids they keep (1..perAccount), each set in the order they got there. */
  private readonly bySize = new Map<number, Set<string>>()
  private largest = 0

  constructor(
    readonly max: number,
    readonly perAccount: number,
  ) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxPeerIds must be a whole number of at least 0 (got ${max}).`)
    if (!Number.isInteger(perAccount) || perAccount < 1) throw new RangeError(`maxPeerIdsPerUser must be a whole number of at least 1 (got ${perAccount}).`)
  }

  /** Peer ids held by open sockets, and kept. */
  get sizes(): { readonly held: number; readonly kept: number } {
    return { held: this.held.size, kept: this.kept.size }
  }

  /**
   * The principal that owns `peerId`, held or kept (undefined: nobody), and whether an open
   * socket holds it.
   */
  ownerOf(peerId: string): { readonly owner: string; readonly held: boolean } | undefined {
    const h = this.held.get(peerId)
    if (h !== undefined) return { owner: h.owner, held: true }
    const k = this.kept.get(peerId)
    return k === undefined ? undefined : { owner: k.owner, held: false }
  }

  /** A socket of `owner` (checked by the caller: `ownerOf` is it or nobody) now holds `peerId`. */
  hold(peerId: string, owner: string): void {
    const h = this.held.get(peerId)
    if (h !== undefined) {
      h.sockets++
      return
    }
    this.forget(peerId)
    this.held.set(peerId, { owner, sockets: 1 })
  }

  /** A socket holding `peerId` closed; with none left, its record is kept, charged to `account`. */
  release(peerId: string, account: string): void {
    const h = this.held.get(peerId)
    if (h === undefined || --h.sockets > 0) return
    this.held.delete(peerId)
    // Its own oldest first: the account never keeps more than perAccount.
    const before = this.accounts.get(account)
    if (before !== undefined && before.size >= this.perAccount) this.forget(before.values().next().value!)
    let ids = this.accounts.get(account)
    if (ids === undefined) this.accounts.set(account, (ids = new Set()))
    this.kept.set(peerId, { owner: h.owner, account })
    this.resize(account, ids.size, ids.size + 1)
    ids.add(peerId)
    // Past the bound in all: the oldest of the account keeping the most (perhaps this one).
    while (this.kept.size > this.max) {
      const biggest = this.bySize.get(this.largest)!.values().next().value!
      this.forget(this.accounts.get(biggest)!.values().next().value!)
    }
  }

  /** Forgets a kept record (no-op for one held or unknown). */
  private forget(peerId: string): void {
    const k = this.kept.get(peerId)
    if (k === undefined) return
    this.kept.delete(peerId)
    const ids = this.accounts.get(k.account)!
    ids.delete(peerId)
    this.resize(k.account, ids.size + 1, ids.size)
    if (ids.size === 0) this.accounts.delete(k.account)
  }

  private resize(account: string, from: number, to: number): void {
    if (from > 0) {
      const set = this.bySize.get(from)!
      set.delete(account)
      if (set.size === 0) {
        this.bySize.delete(from)
        // Sizes move by one: the largest drops to `to` (where this account now is, or none left).
        if (from === this.largest) this.largest = to
      }
    }
    if (to > 0) {
      let set = this.bySize.get(to)
      if (set === undefined) this.bySize.set(to, (set = new Set()))
      set.add(account)
      if (to > this.largest) this.largest = to
    }
  }
}
