/**
 * A hub restored from an older backup, again and again, under clients that write, lose their
 * connections and catch up in small pages (seeded; a failing seed prints itself and replays
 * with `HUB_RESTORE_SEED=N`). Each command carries a tag no other has. What must hold:
 *
 * - a `confirmed` event's seq holds that command in the log of the hub life it was told in;
 * - no tag is in the final log twice;
 * - every command is told an outcome, none rejected; one told confirmed in the last life is
 *   in the final log (a restore takes away only what was confirmed before it: `rewound`);
 * - every client ends at the hub's seq and state hash, its outbox empty. A client that comes
 *   back after the restored hub has written past its seq is not told `rewound` (its seq says
 *   nothing is missing): the next checkpoint tells it (`desync`, then the hub's state), the
 *   quiet one at the latest, which the end waits for.
 *
 * The second world restores each backup with the build it was taken under (an operator
 * rolling back a bad release with its data): the hub runs Tags or TagsV2, is upgraded now and
 * then, and the apps run TagsV2, in compat mode while the hub is older. It found two ways an
 * app kept declaring the older version to a newer hub (sim-fleet-findings, "step-down").
 * Each hub life speaks protocol 1 only, 1..2, 1..3 or 1..4.
 *
 * The simulator's hub never goes back in time (its crashes keep durable writes); this is the
 * world where it does. (An answer of an earlier life kept across the restore, which settled a
 * command at a seq holding another, is not reached here in 300 seeds: the replica is caught
 * up when answers come; test/client-answer-across-connections.test.ts holds that case.)
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type Doc, type Entry } from "../core/index.js"
import { evolve } from "../core/schema/versions.js"
import { AuthorityStore, seededRandom } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { backupOf } from "./support/backup.js"

const Tags = defineMachine({
  name: "hub-restore-tags",
  version: 1,
  initial: () => ({ tags: [] as string[] }),
  commands: { add: { args: Schema.Struct({ tag: Schema.String }), apply: (s, a) => { s.tags.push(a.tag) } } },
})
/** The next build's version: an optional note its predecessor cannot hold (downcast drops it). */
const TagsV2 = evolve(Tags, {
  version: 2,
  migrateState: (s: { tags: string[] }) => s,
  commands: { add: { args: Schema.Struct({ tag: Schema.String, note: Schema.optional(Schema.String) }), apply: (s: { tags: string[] }, a) => { s.tags.push(a.tag) } } },
  upcast: { add: (a) => ({ name: "add", args: a }) },
  downcast: { add: (a) => ({ name: "add", args: { tag: a.tag } }) },
}) as unknown as typeof Tags
const DOC = "t"
const NAMES = ["a", "b", "c"]

interface Told { readonly tag: string; readonly life: number; readonly seq: number }

/**
 * `builds`: the hub's build goes back and forth too. It is upgraded to TagsV2 now and then, and
 * a backup is restored with the build it was taken under (an operator rolling back a bad
 * release with its data); the apps run TagsV2, in compat mode while the hub runs Tags.
 */
const world = async (seed: number, builds: boolean, say: (s: string) => void = () => {}): Promise<string[]> => {
  const failures: string[] = []
  const rng = seededRandom(seed)
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => Math.floor(rng() * 12), encode: true })
  let hubDisk = new MemoryStorage()
  // Never compacted: each life's whole log is read for the checks.
  // Each hub life speaks protocol 1 only, 1..2, 1..3 or 1..4 (a restore may also be a rollback of the hub's build).
  let build = builds && rng() < 0.5 ? TagsV2 : Tags
  const app = builds ? TagsV2 : Tags
  const hubOf = () => new Hub({ machines: [build], storage: hubDisk, runtime: rt, catchUpPage: 3, snapshots: { tailBytes: Infinity }, protocol: { min: 1, max: 1 + Math.floor(rng() * 4) } })
  let hub = hubOf()
  net.listen(hub)
  let life = 0
  const logs: Entry[][] = []
  const readLog = async () => new AuthorityStore(hubDisk).entries(DOC, 0, 100_000)
  const clients: Array<{ client: CanonClient; doc: Doc<typeof Tags> }> = []
  const made = new Map<string, { told: Told | "rejected" | undefined }>()
  let n = 0
  // The hub life each client's connection is to: what it is told comes from that life (a
  // restore ends every connection, and a new one opens only after a backoff).
  const lifeOf = new Map<string, number>()
  for (const name of NAMES) {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name, storage: new MemoryStorage(), backoff: { baseMs: 20, maxMs: 200 } })
    client.onStatus((s) => { if (s === "online") lifeOf.set(name, life); say(`${rt.now()} ${name} ${s}`) })
    const doc = await client.open(app, DOC)
    doc.on("rewound", (e) => say(`${rt.now()} ${name} rewound ${e.from} -> ${e.to}`))
    doc.on("desync", (e) => say(`${rt.now()} ${name} desync at ${e.seq}`))
    clients.push({ client, doc })
  }
  await rt.run({ forMs: 200 })
  const backups: Array<{ disk: MemoryStorage; build: typeof Tags }> = []
  const submit = (i: number) => {
    const { doc } = clients[i]!
    const tag = `${NAMES[i]}-${n++}`
    const m: { told: Told | "rejected" | undefined } = { told: undefined }
    made.set(tag, m)
    const receipt = doc.submit("add", { tag, ...(builds && n % 2 === 0 ? { note: "n" } : {}) })
    say(`${rt.now()} ${tag} submitted as ${receipt.clientSeq}`)
    receipt.then((c) => {
      const told = lifeOf.get(NAMES[i]!)!
      m.told = { tag, life: told, seq: c.seq }
      say(`${rt.now()} ${tag} confirmed at ${c.seq} in life ${told} (${JSON.stringify(c)})`)
    }, (e: { code?: string; message?: string }) => {
      m.told = "rejected"
      say(`${rt.now()} ${tag} rejected: ${e.code}: ${e.message}`)
    })
  }
  for (let step = 0; step < 120; step++) {
    const r = rng()
    if (r < 0.55) submit(Math.floor(rng() * NAMES.length))
    else if (r < 0.65) {
      const name = NAMES[Math.floor(rng() * NAMES.length)]!
      say(`${rt.now()} ${name} dropped`)
      net.drop(name)
    }
    else if (r < 0.75) {
      // Offline a while (it keeps writing), then back: a resent outbox answered while the
      // catch-up is still paging towards it.
      const { client } = clients[Math.floor(rng() * NAMES.length)]!
      client.disconnect()
      say(`${rt.now()} ${client.clientId} offline`)
      rt.setTimer(100 + Math.floor(rng() * 400), () => client.connect())
    }
    else if (builds && r < 0.77 && build === Tags) {
      // The hub's upgrade: restarted on its disk with the next build.
      await hub.close()
      net.stopServer()
      build = TagsV2
      say(`${rt.now()} hub upgraded`)
      hub = hubOf()
      net.listen(hub)
    }
    else if (r < 0.85) {
      backups.push({ disk: await backupOf(hubDisk), build })
      say(`${rt.now()} backup ${backups.length - 1}`)
    }
    else if (r < 0.92 && backups.length > 0) {
      // Restored: the hub stops, and starts again on a backup.
      logs[life] = await readLog()
      await hub.close()
      net.stopServer()
      const b = Math.floor(rng() * backups.length)
      hubDisk = await backupOf(backups[b]!.disk)
      build = backups[b]!.build
      life++
      const head = (await readLog()).at(-1)?.seq ?? 0
      say(`${rt.now()} hub restored from backup ${b} (head ${head}, v${build.version}); life ${life}`)
      hub = hubOf()
      net.listen(hub)
    }
    await rt.run({ forMs: Math.floor(rng() * 60) })
  }
  if (build !== app) {
    // Apps newer than their hub (compat mode) cannot compare its checkpoints (they are of the
    // hub's version): one that came back after the restored hub wrote past its seq keeps its
    // view until the hub runs its version (README). The operator upgrades the hub at the end.
    logs[life] = await readLog()
    await hub.close()
    net.stopServer()
    build = app
    life++
    say(`${rt.now()} hub upgraded at the end; life ${life}`)
    hub = hubOf()
    net.listen(hub)
  }
  for (let i = 0; i < 200 && !clients.every(({ doc, client }) => client.status === "online" && doc.pendingCount === 0 && doc.synced); i++) await rt.run({ forMs: 100 })
  await rt.run({ forMs: 5_000 })
  logs[life] = await readLog()
  const final = logs[life]!.filter((e) => e.name === "add")
  const tagOf = (e: Entry | undefined) => (e?.args as { tag?: string } | undefined)?.tag
  const seen = new Map<string, number>()
  for (const e of final) {
    const t = tagOf(e)!
    if (seen.has(t)) failures.push(`${t} is in the final log twice (seq ${seen.get(t)} and ${e.seq})`)
    seen.set(t, e.seq)
  }
  for (const [tag, m] of made) {
    if (m.told === undefined) failures.push(`${tag} was never told an outcome`)
    else if (m.told === "rejected") failures.push(`${tag} was rejected`)
    else {
      const told = m.told
      const at = logs[told.life]!.find((e) => e.seq === told.seq)
      if (tagOf(at) !== tag) failures.push(`${tag} was told confirmed at seq ${told.seq} in hub life ${told.life}, which holds ${tagOf(at) ?? "nothing"}`)
      if (told.life === life && !seen.has(tag)) failures.push(`${tag}, confirmed in the last hub life, is not in the final log`)
    }
  }
  const authority = await hub.doc(DOC, build)
  for (const [i, { doc }] of clients.entries()) {
    if (doc.pendingCount !== 0) failures.push(`${NAMES[i]} still has ${doc.pendingCount} pending`)
    if (doc.confirmedSeq !== authority.headSeq) failures.push(`${NAMES[i]} is at seq ${doc.confirmedSeq}, the hub at ${authority.headSeq}`)
    else if (doc.confirmedHash() !== authority.stateHash()) {
      failures.push(`${NAMES[i]}'s state differs from the hub's at seq ${doc.confirmedSeq}`)
      say(`${NAMES[i]}: ${JSON.stringify(doc.state)}\nhub: ${JSON.stringify(authority.state)}`)
    }
  }
  for (const { client } of clients) await client.close()
  await hub.close()
  return failures
}

const only = process.env.HUB_RESTORE_SEED
const BUILDS = process.env.HUB_RESTORE_BUILDS === "1"
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: Number(process.env.HUB_RESTORE_SEEDS ?? 40) }, (_, i) => i + 1)

test(`a hub restored from older backups: seeds ${seeds[0]}..${seeds.at(-1)}`, async () => {
  const failed: string[] = []
  for (const seed of seeds) {
    const f = await world(seed, false, only !== undefined && !BUILDS ? (s) => console.log(s) : undefined)
    if (f.length > 0) failed.push(`seed ${seed} (replay: HUB_RESTORE_SEED=${seed}): ${f.slice(0, 3).join("; ")}`)
  }
  expect(failed).toEqual([])
}, 600_000)

test(`a hub restored from older backups with the build each was taken under, apps newer: seeds ${seeds[0]}..${seeds.at(-1)}`, async () => {
  const failed: string[] = []
  for (const seed of seeds) {
    const f = await world(seed, true, only !== undefined && BUILDS ? (s) => console.log(s) : undefined)
    if (f.length > 0) failed.push(`seed ${seed} (replay: HUB_RESTORE_BUILDS=1 HUB_RESTORE_SEED=${seed}): ${f.slice(0, 3).join("; ")}`)
  }
  expect(failed).toEqual([])
}, 600_000)
