/**
 * Automerge replicas attached for one test, detached after it whatever happened. A replica
 * left attached goes on syncing, and on decoding a large message, after its file has ended: in
 * a jest worker, into the next file's checks (CI failed so in closed-quiet). Importing this
 * module registers the afterEach.
 */
import type { AutomergeReplica } from "../../adapters/peer/index.js"
import type { PeerLink } from "../../core/crdt-docs/index.js"

const attached: Array<{ readonly replica: AutomergeReplica<any>; readonly detach: () => void }> = []

afterEach(async () => {
  const all = attached.splice(0)
  for (const { detach } of all) detach()
  // Detached, a replica stops decoding at its next slice; idle once it has.
  await Promise.all(all.map(({ replica }) => replica.idle()))
})

/** `replica.attach(link)`, undone after the test (or sooner, by the function it returns). */
export const attach = <T>(replica: AutomergeReplica<T>, link: PeerLink): (() => void) => {
  const detach = replica.attach(link)
  attached.push({ replica, detach })
  return detach
}
