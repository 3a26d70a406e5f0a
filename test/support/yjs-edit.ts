/**
 * A writer's edit of a Yjs document as it is now, for tests that play writers against a hub's
 * document: the update of the one transaction `change` makes (a state-vector diff would repeat
 * every deletion before it), from a fresh Y.Doc with `clientID`. The clientID is set after the
 * document is loaded: set before, Yjs takes a random one in its place when the document holds
 * structs of it (a writer it takes for another one using its id), and a seed no longer replays.
 */
import * as Y from "yjs"
import * as encoding from "lib0/encoding"

/** The update `change` makes to the text "t" of a copy of `doc` (undefined: it changed nothing). */
export const editOf = (doc: Y.Doc, clientID: number, change: (t: Y.Text) => void): Uint8Array | undefined =>
  updateOf(doc, clientID, (w) => change(w.getText("t")))

/** The update of the one transaction `change` makes to a copy of `doc` (any roots). */
export const updateOf = (doc: Y.Doc, clientID: number, change: (d: Y.Doc) => void): Uint8Array | undefined => {
  const w = new Y.Doc()
  Y.applyUpdate(w, Y.encodeStateAsUpdate(doc))
  w.clientID = clientID
  let u: Uint8Array | undefined
  w.on("update", (update: Uint8Array) => void (u = update))
  w.transact(() => change(w))
  w.destroy()
  return u
}

/** A V1 update deleting exactly `ranges` (client -> [clock, len] in the order given, repeats kept), as a hostile writer may write it. */
export const deletionOf = (ranges: ReadonlyArray<readonly [number, ReadonlyArray<readonly [number, number]>]>): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  encoding.writeVarUint(e, ranges.length)
  for (const [client, rs] of ranges) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, rs.length)
    for (const [clock, len] of rs) {
      encoding.writeVarUint(e, clock)
      encoding.writeVarUint(e, len)
    }
  }
  return encoding.toUint8Array(e)
}
