/**
 * Stores that go back in time: devices whose storage is restored from a backup of itself (a
 * phone restored from its cloud backup, a VM snapshot rolled back), and a device moved to a
 * new one from its backup (the old one stops for good). Each keeps its clientId and secret,
 * and its outbox and numbering are the backup's: it resends commands the hub may have applied
 * since, and numbers new commands with numbers the hub gave to commands made after the
 * backup, so the hub renumbers them (`sequence-reset`) under crashes, failed writes and every
 * fault of the world. In odd seeds the old device keeps running beside the new one instead: a
 * store copied to a second device, two devices numbering under one clientId. In seeds 2 and 3
 * of every 4, d1 runs the app's next version (`TagsV2`), which the hub does not: it syncs in
 * compat mode, its own entries converted from the hub's version. In seeds 6 and 7 of every 8
 * the hub is upgraded to TagsV2 too, at a random moment: d1's commands taken in their downcast
 * form may come again in their own (every other add carries a note), and a device left on
 * Tags that is told `update-required` is updated to TagsV2.
 *
 * The devices write to their own document, of a machine (`Tags`) whose every command carries
 * a unique tag, so each command is recognised in the log whatever number it ends up under:
 *
 * - `rollback` exactly once: no tag twice in the document (but for the known limit: a command
 *   the hub renumbered after a backup holding it was taken, and took without the number it
 *   was made under, as a hub start that speaks protocol 1 only does: `rollbackRenumberedTwice`);
 * - `rollback` nothing lost: a tag stored in its device's outbox is in the document, unless a
 *   restore from a backup taken before it was stored came before the hub had it;
 * - `rollback` acknowledged: a receipt's seq holds its tag; a `confirmed` event's seq holds a tag
 *   of that clientId; only `refuse` commands are rejected, and always;
 * - `rollback` convergence: every device ends online at the authority's seq and hash, its
 *   outbox empty.
 */
import { Schema } from "effect"
import { CanonClient, defineMachine, replicaStorage, type Doc, type Entry, type Runtime } from "../../core/index.js"
import { seededRandom } from "../../core/internal.js"
import { evolve } from "../../core/schema/versions.js"
import { MemoryStorage, type MemoryNetwork } from "../../adapters/memory/index.js"
import { SimProcess } from "./process.js"
import { codeOf, message } from "./guard.js"
import type { OutcomeRun, StoredOutcome } from "../../core/store/records.js"

export const ROLLBACK_DOC = "rollback-tags"

/** Every command carries a tag no other command has; `refuse` is always rejected. */
export const Tags = defineMachine({
  name: "rollback-tags",
  version: 1,
  initial: () => ({ tags: [] as string[] }),
  commands: {
    add: { args: Schema.Struct({ tag: Schema.String }), apply: (s, a) => { s.tags.push(a.tag) } },
    refuse: { args: Schema.Struct({ tag: Schema.String }), apply: (_s, a, ctx) => ctx.reject(`${a.tag} is refused, as every refuse is.`) },
  },
})

/**
 * The app's next version, which the hub does not run: an app on it speaks to the hub in compat
 * mode (its commands downcast, the hub's entries upcast, core/schema/compat.ts). `add` gains an
 * optional note the hub's version cannot hold.
 */
type TagsState = { tags: string[] }
export const TagsV2 = evolve(Tags, {
  version: 2,
  migrateState: (s: TagsState): TagsState => s,
  commands: {
    add: { args: Schema.Struct({ tag: Schema.String, note: Schema.optional(Schema.String) }), apply: (s: TagsState, a) => { s.tags.push(a.tag) } },
    refuse: { args: Schema.Struct({ tag: Schema.String }), apply: (_s: TagsState, a, ctx) => ctx.reject(`${a.tag} is refused, as every refuse is.`) },
  },
  upcast: { add: (a) => ({ name: "add", args: a }) },
  downcast: { add: (a) => ({ name: "add", args: { tag: a.tag } }) },
})

interface Backup {
  readonly takenAt: number
  readonly rows: ReadonlyArray<readonly [Uint8Array, Uint8Array]>
}

interface Device {
  readonly name: string
  disk: MemoryStorage
  proc: SimProcess
  client: CanonClient | undefined
  doc: Doc<typeof Tags> | undefined
  /**
   * The app's version: in seeds 2 and 3 of every 4, d1 (and what is moved from it) runs TagsV2,
   * in compat mode; a device told `update-required` is updated to TagsV2.
   */
  machine: typeof Tags
  clientId: string | undefined
  backups: Backup[]
  /** Restores of this device's disk: when, and when the backup used was taken. */
  readonly restores: Array<{ readonly at: number; readonly takenAt: number }>
  made: number
}

interface Made {
  readonly tag: string
  readonly name: "add" | "refuse"
  readonly device: Device
  readonly madeAt: number
  /** The clientSeq it was made under. */
  readonly numbered: number
  persistedAt: number | undefined
  told: { readonly seq: number } | { readonly code: string } | undefined
}

export interface RollbackWorld {
  readonly net: MemoryNetwork
  readonly rt: Runtime
  readonly now: () => number
  readonly seed: number
  readonly activeMs: number
  /** How many restores (and one move to a new device). */
  readonly restores: number
  readonly active: () => boolean
  readonly fail: (s: string) => void
  readonly log: (s: string) => void
  readonly stats: Record<string, number>
  /** Whether a hub start that speaks no protocol 3 ran at or after time `t` (`now`'s clock). */
  readonly oldHubSince: (t: number) => boolean
}

/** The kept outcome of clientSeq `n` among a client's outcome runs. */
const outcomeAt = (runs: ReadonlyArray<OutcomeRun>, n: number): StoredOutcome | undefined => {
  const run = runs.find((r) => r.first <= n && n < r.first + r.outcomes.length)
  return run?.outcomes[n - run.first]
}

export class RollbackDevices {
  private readonly devices: Device[] = []
  /** Devices that stopped for good (moved to a new one). */
  private readonly retired: Device[] = []
  private readonly made = new Map<string, Made>()
  private readonly events: Array<{ readonly clientId: string; readonly device: string; readonly seq: number; readonly command: string }> = []
  private readonly rng: () => number
  /** The disks' latencies and faults, from a stream of their own (the rest of the world keeps its draws). */
  private readonly diskRng: () => number

  constructor(private readonly w: RollbackWorld) {
    this.rng = seededRandom(w.seed ^ 0x8ac4b)
    this.diskRng = seededRandom(w.seed ^ 0xd15c8)
    for (const name of ["d0", "d1"]) this.devices.push(this.device(name, this.disk(), name === "d1" && w.seed % 4 >= 2 ? TagsV2 as unknown as typeof Tags : Tags))
  }

  /** A device's disk: writes take 0-4 ms (now and then up to 60), and 2% of them fail while the world is active. */
  private disk(): MemoryStorage {
    const r = this.diskRng
    return new MemoryStorage({
      latency: { runtime: this.w.rt, ms: () => (r() < 0.1 ? Math.floor(r() * 60) : Math.floor(r() * 4)) },
      failWrite: () => {
        if (!this.w.active() || r() >= 0.02) return false
        this.w.stats.rollbackWriteFailures = (this.w.stats.rollbackWriteFailures ?? 0) + 1
        return true
      },
    })
  }

  private device(name: string, disk: MemoryStorage, machine: typeof Tags): Device {
    const proc = new SimProcess(name, this.w.rt, disk)
    proc.alive = false
    return { name, disk, proc, client: undefined, doc: undefined, clientId: undefined, backups: [], restores: [], made: 0, machine }
  }

  /** Plans the active phase: typing, backups, crashes with restores, one move to a new device. */
  start(): void {
    const { rng, w } = this
    for (const d of this.devices) void this.open(d)
    for (let t = 100; t < w.activeMs; t += 150 + Math.floor(rng() * 300)) w.rt.setTimer(t, () => this.submit(this.pick()))
    for (let t = 500; t < w.activeMs; t += 800 + Math.floor(rng() * 2_000)) w.rt.setTimer(t, () => void this.backup(this.pick()))
    for (let t = 1_000; t < w.activeMs; t += 1_500 + Math.floor(rng() * 3_000)) w.rt.setTimer(t, () => this.crash(this.pick(), false))
    for (let i = 0; i < w.restores; i++) w.rt.setTimer(2_000 + Math.floor(rng() * (w.activeMs - 3_000)), () => this.crash(this.pick(), true))
    w.rt.setTimer(2_000 + Math.floor(rng() * (w.activeMs - 4_000)), () => void this.move(this.pick()))
    for (let t = 700; t < w.activeMs; t += 1_000 + Math.floor(rng() * 2_000)) {
      w.rt.setTimer(t, () => {
        const d = this.pick()
        this.w.stats.rollbackDrops = (this.w.stats.rollbackDrops ?? 0) + 1
        w.net.drop(d.name)
      })
    }
  }

  private pick(): Device {
    return this.devices[Math.floor(this.rng() * this.devices.length)]!
  }

  private async open(d: Device): Promise<void> {
    if (d.proc.alive || this.retired.includes(d)) return
    const proc = (d.proc = new SimProcess(d.name, this.w.rt, d.disk))
    try {
      const client = await CanonClient.open({ transport: proc.wrapTransport(this.w.net.transport(d.name)), runtime: proc.runtime, storage: replicaStorage(proc.storage), backoff: { baseMs: 50, maxMs: 1_000 } })
      if (!proc.alive) return
      const doc = await client.open(d.machine, ROLLBACK_DOC)
      if (!proc.alive) return
      if (d.clientId !== undefined && client.clientId !== d.clientId) this.w.fail(`rollback: ${d.name} came back as ${client.clientId} after using ${d.clientId}`)
      d.clientId = client.clientId
      d.client = client
      d.doc = doc
      const clientId = client.clientId
      doc.on("confirmed", (e) => this.events.push({ clientId, device: d.name, seq: e.seq, command: e.command }))
      doc.on("rejected", (e) => {
        if (e.command !== "refuse") this.w.fail(`rollback: ${d.name}'s ${e.command} (clientSeq ${e.clientSeq}) was rejected: ${e.rejection.code}: ${e.rejection.message}`)
      })
      doc.on("error", (e) => this.w.log(`${d.name} ${ROLLBACK_DOC} error ${e.code}: ${e.message.slice(0, 160)}`))
      doc.on("updateRequired", () => this.update(d, proc))
      this.w.log(`${d.name} follows ${ROLLBACK_DOC} as ${clientId} seq=${doc.confirmedSeq} pending=${doc.pendingCount}`)
    } catch (e) {
      if (!proc.alive) return
      if (codeOf(e) !== "storage-failed") this.w.fail(`rollback: ${d.name} could not open: ${codeOf(e)}: ${message(e)}`)
      proc.kill()
      this.w.rt.setTimer(300, () => void this.open(d))
    }
  }

  private submit(d: Device): void {
    const doc = d.doc
    if (!this.w.active() || doc === undefined || !d.proc.alive || doc.isClosed) return
    const name = this.rng() < 0.1 ? "refuse" : "add"
    const tag = `${d.name}-${d.made++}`
    // On TagsV2, every other add carries a note: its downcast (what the hub takes in compat
    // mode) is another form than what it sends once the hub runs TagsV2 (seeds 6 and 7 of 8).
    const note = name === "add" && d.machine === (TagsV2 as unknown) && d.made % 2 === 1 ? { note: `by ${d.name}` } : {}
    const receipt = doc.submit(name, { tag, ...note })
    const m: Made = { tag, name, device: d, madeAt: this.w.now(), numbered: receipt.clientSeq, persistedAt: undefined, told: undefined }
    this.made.set(tag, m)
    receipt.persisted.then((lost) => { if (lost === undefined) m.persistedAt = this.w.now() })
    const renumbered = () => {
      if (receipt.clientSeq === m.numbered) return
      this.w.stats.rollbackRenumbered = (this.w.stats.rollbackRenumbered ?? 0) + 1
    }
    receipt.then((v) => {
      renumbered()
      m.told = { seq: v.seq }
    }, (e: { code?: string }) => {
      renumbered()
      m.told = { code: e.code ?? "?" }
    })
    this.w.log(`${d.name} submit ${ROLLBACK_DOC} ${receipt.clientSeq} ${name} ${tag}`)
  }

  /** What the disk holds now, as a backup tool reads it (durable writes only). */
  private async backup(d: Device): Promise<void> {
    if (!this.w.active() || d.clientId === undefined) return
    const disk = d.disk
    const rows = await disk.range({}).catch(() => undefined)
    if (rows === undefined || disk !== d.disk) return
    d.backups = [...d.backups.slice(-2), { takenAt: this.w.now(), rows }]
    this.w.stats.rollbackBackups = (this.w.stats.rollbackBackups ?? 0) + 1
  }

  private async diskOf(b: Backup): Promise<MemoryStorage> {
    const disk = this.disk()
    // Written before the device starts, so no fault may refuse it: retried until it lands.
    for (let i = 0; i < 20; i++) {
      const ok = await disk.batch(b.rows.map(([key, value]) => ({ type: "put" as const, key, value }))).then(() => true, () => false)
      if (ok) return disk
    }
    throw new Error("the backup could not be written to a fresh disk")
  }

  /** kill -9: its process, its connection, its client and document go. */
  private kill(d: Device): void {
    if (d.proc.alive) d.proc.kill()
    this.w.net.drop(d.name)
    d.client = undefined
    d.doc = undefined
  }

  /** Killed; back soon, with its disk as one of its backups if `restore` (and it has one). */
  private crash(d: Device, restore: boolean): void {
    if (!this.w.active() || !d.proc.alive) return
    this.kill(d)
    const backup = restore ? d.backups[Math.floor(this.rng() * d.backups.length)] : undefined
    this.w.log(`${d.name} crash${backup === undefined ? "" : `, restored from its backup of ${backup.takenAt - 1_700_000_000_000}`}`)
    const down = 100 + Math.floor(this.rng() * 1_500)
    this.w.rt.setTimer(down, async () => {
      if (backup !== undefined) {
        d.disk = await this.diskOf(backup)
        d.restores.push({ at: this.w.now(), takenAt: backup.takenAt })
        this.w.stats.rollbackRestores = (this.w.stats.rollbackRestores ?? 0) + 1
      }
      void this.open(d)
    })
  }

  /**
   * A new device goes on from `d`'s newest backup (a phone replaced by a new one): `d` stops
   * for good, or, in odd seeds, keeps running beside its copy (a store copied to a second
   * device: two devices numbering under one clientId and secret).
   */
  private async move(d: Device): Promise<void> {
    const b = d.backups.at(-1)
    if (!this.w.active() || b === undefined || d.name.endsWith("-moved")) return
    const copy = this.w.seed % 2 === 1
    const moved = this.device(`${d.name}-moved`, await this.diskOf(b), d.machine)
    if (!copy) {
      this.devices.splice(this.devices.indexOf(d), 1)
      this.retired.push(d)
      this.kill(d)
    }
    // Its outbox is d's at the backup: those commands are d's, and judged as d's. Moved, what d
    // stored after the backup may be lost with it, as with a restore; copied, the copy starts
    // from a backup (the known limit looks for one, `check`).
    const restored = copy ? moved : d
    restored.restores.push({ at: this.w.now(), takenAt: b.takenAt })
    this.devices.push(moved)
    const counter = copy ? "rollbackCopies" : "rollbackMoves"
    this.w.stats[counter] = (this.w.stats[counter] ?? 0) + 1
    this.w.log(`${d.name} ${copy ? "goes on beside" : "stops for good;"} ${moved.name}, started from its backup of ${b.takenAt - 1_700_000_000_000}`)
    void this.open(moved)
  }

  /**
   * The app is updated to TagsV2 (the hub runs it, and this device cannot be shown what it
   * wrote): restarted on the same disk, its store upgraded with its outbox.
   */
  private update(d: Device, proc: SimProcess): void {
    if (d.proc !== proc || !proc.alive || d.machine === (TagsV2 as unknown)) return
    this.w.stats.rollbackAppUpdates = (this.w.stats.rollbackAppUpdates ?? 0) + 1
    this.w.log(`${d.name} updated to ${ROLLBACK_DOC} v2 (update-required)`)
    this.kill(d)
    d.machine = TagsV2 as unknown as typeof Tags
    this.w.rt.setTimer(200, () => void this.open(d))
  }

  /** The world heals: every device back up. */
  heal(): void {
    for (const d of this.devices) if (!d.proc.alive || d.client === undefined) this.w.rt.setTimer(0, () => void this.open(d))
  }

  /** Devices online now (each holds one connection to the hub). */
  online(): number {
    return this.devices.filter((d) => d.proc.alive && d.client?.status === "online").length
  }

  quiet(): boolean {
    return this.devices.every((d) => d.client?.status === "online" && d.doc !== undefined && d.doc.synced && d.doc.pendingCount === 0)
  }

  /** The invariants, against the authority's document at the end. */
  /** The clientIds the devices wrote under (a moved device's is its original's). */
  clientIds(): string[] {
    return [...new Set([...this.devices, ...this.retired].flatMap((d) => (d.clientId === undefined ? [] : [d.clientId])))]
  }

  /**
   * The invariants, against the authority's document at the end. `runs`: the hub's kept
   * outcomes of each clientId (they say which commands came renumbered with the number they
   * were made under).
   */
  check(authority: { readonly seq: number; readonly hash: string; readonly tags: ReadonlyArray<string> } | string, entries: ReadonlyArray<Entry> | string, runs: ReadonlyMap<string, ReadonlyArray<OutcomeRun>>): void {
    const fail = (s: string) => this.w.fail(`rollback: ${s}`)
    if (typeof authority === "string") return fail(`the hub cannot load ${ROLLBACK_DOC}: ${authority}`)
    const { tags } = authority
    // Each tag's entry: the log's adds are the state's tags, in order; an upgraded hub's
    // $migrate marker takes a seq of its own, so the k-th tag is not always at seq k + 1.
    const adds = typeof entries === "string" ? undefined : entries.filter((e) => e.name === "add")
    if (adds !== undefined && (adds.length !== tags.length || adds.some((e, k) => (e.args as { tag?: unknown }).tag !== tags[k]))) return fail(`the log's adds are not the state's tags`)
    const seqOf = (k: number) => adds?.[k]?.seq ?? k + 1
    const tagAt = new Map<number, string>(tags.map((t, k) => [seqOf(k), t]))
    const at = new Map<string, number>()
    tags.forEach((t, i) => {
      const first = at.get(t)
      if (first === undefined) return void at.set(t, i)
      // The known limit (README, "A device restored from an older backup"): a command the hub
      // renumbered after a backup holding it was taken is in the restored outbox under its old
      // number, which the hub holds another command under. From protocol 3 on the renumbered
      // command says the number it was made under and the hub finds it by that; a hub start
      // that spoke protocol 1 only took it without, and then nothing tells the two apart. Its
      // first entry is under another number than it was made under, the hub took it once
      // without a made-under number, a hub start that speaks no protocol 3 ran after it was
      // made, and a backup of its clientId taken after it was made was restored.
      const m = this.made.get(t)
      const firstEntry = adds?.[first]
      const renumbered = m !== undefined && firstEntry !== undefined && firstEntry.clientSeq !== m.numbered
      const lineage = [...this.devices, ...this.retired].filter((d) => d.clientId === m?.device.clientId)
      // The hub could find it if it took it both times knowing the number it was made under
      // (said with it, or the number it came under).
      const again = adds?.[i]
      const knew = (e: Entry | undefined) => {
        const o = e === undefined ? undefined : outcomeAt(runs.get(e.clientId) ?? [], e.clientSeq)
        return o !== undefined && (o.madeAs !== undefined || e!.clientSeq === m?.numbered)
      }
      if (knew(firstEntry) && knew(again)) fail(`${t} is in ${ROLLBACK_DOC} twice, at seq ${seqOf(first)} and ${seqOf(i)}, though the hub took it both times knowing the number it was made under`)
      else if (m !== undefined && renumbered && this.w.oldHubSince(m.madeAt) && lineage.some((d) => d.restores.some((r) => r.takenAt >= m.madeAt))) {
        this.w.stats.rollbackRenumberedTwice = (this.w.stats.rollbackRenumberedTwice ?? 0) + 1
        this.w.log(`rollback: ${t}, renumbered after a backup that holds it, is in ${ROLLBACK_DOC} twice (seq ${seqOf(first)} and ${seqOf(i)}): the known limit`)
      } else fail(`${t} is in ${ROLLBACK_DOC} twice, at seq ${seqOf(first)} and ${seqOf(i)}`)
    })
    // A moved device's tags of its original's commands are its original's, and so are their clientIds.
    const owner = (tag: string) => this.made.get(tag)?.device.clientId
    for (const m of this.made.values()) {
      const i = at.get(m.tag)
      if (m.name === "refuse" && i !== undefined) fail(`${m.tag}, a refuse, is in the document at seq ${seqOf(i)}`)
      if (m.told !== undefined && "seq" in m.told && tagAt.get(m.told.seq) !== m.tag) fail(`${m.tag} was confirmed at seq ${m.told.seq}, which holds ${tagAt.get(m.told.seq) ?? "nothing"}`)
      if (m.told !== undefined && "code" in m.told && m.name === "add" && i !== undefined) fail(`${m.tag} was told ${m.told.code} but is in the document at seq ${seqOf(i)}`)
      if (m.name !== "add" || i !== undefined || m.persistedAt === undefined) continue
      // Stored after the backup a later restore used: it may have been lost with the disk.
      // (Taken in the same ms as the write landed, the backup may hold it or not.)
      const rolledBack = m.device.restores.some((r) => r.at >= m.persistedAt! && r.takenAt <= m.persistedAt!)
      if (!rolledBack) fail(`${m.tag} was stored in ${m.device.name}'s outbox and is not in the document (${m.told === undefined ? "never told" : JSON.stringify(m.told)})`)
    }
    for (const e of this.events) {
      const tag = tagAt.get(e.seq)
      if (tag === undefined || owner(tag) !== e.clientId) fail(`${e.device} was told its ${e.command} is confirmed at seq ${e.seq}, which holds ${tag === undefined ? "nothing" : `${tag} of ${owner(tag) ?? "nobody"}`}`)
    }
    for (const d of this.devices) {
      const doc = d.doc
      if (doc === undefined || d.client?.status !== "online") { fail(`${d.name} is ${d.client?.status ?? "down"} at the end`); continue }
      if (doc.confirmedSeq !== authority.seq) fail(`${d.name} is at seq ${doc.confirmedSeq}, the authority at ${authority.seq}`)
      else if (doc.confirmedHash() !== authority.hash) fail(`${d.name}'s state differs from the authority's at seq ${authority.seq}`)
      if (doc.pendingCount !== 0) fail(`${d.name} still has ${doc.pendingCount} pending`)
    }
    this.w.stats.rollbackTags = tags.length
  }

  /** Closed at the end (their timers must stop); the processes, for the quiet check. */
  async close(drive: <T>(what: string, p: Promise<T>) => Promise<T>): Promise<SimProcess[]> {
    for (const d of this.devices) if (d.client !== undefined) await drive(`closing ${d.name}`, d.client.close()).catch(() => {})
    return [...this.devices, ...this.retired].map((d) => d.proc)
  }
}
