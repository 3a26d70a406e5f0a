/**
 * What the engine knows of version histories without bundling them: the registry `evolve`
 * (core/schema/versions.ts) writes each history into, the reserved command names, and the
 * interface the replica and the handshake use. The history object carries the client-side
 * code (converting entries and commands, migrating states and stored replicas), the way a
 * CRDT field carries its runtime (`machine.crdtRuntime`): an app whose machines have no
 * version history imports this module only, and none of core/schema's code.
 */
import { canonError, type CanonError } from "../errors.js"
import type { Entry } from "../entry.js"
import type { CommandContext, Machine } from "../machine.js"
import type { ReplicaStore, StoredReplicaDoc } from "../store/replica-store.js"
import type { ClientMessage } from "../protocol/messages.js"

/** A command with decoded arguments. */
export interface Cmd {
  readonly name: string
  readonly args: unknown
}

/** The ctx of `migrateState`: the version change's seq and time, and seeded random numbers. */
export type MigrationContext = Pick<CommandContext, "seq" | "time" | "random">

/** A stored replica migrated to the app's version (core/schema/replica-upgrade.ts). */
export interface UpgradedReplica {
  readonly state: unknown
  readonly confirmedSeq: number
  readonly snapshotSeq: number
  readonly outbox: ReadonlyArray<{ readonly clientSeq: number; readonly name: string; readonly args: unknown; readonly madeAs?: number }>
  /** The app's migration failed on the stored state: the replica starts at seq 0 instead, and the app is told this. */
  readonly failure?: { readonly code: string; readonly message: string }
}

/** The versions of one machine, oldest first; the last is the machine itself. */
export interface MachineHistory {
  readonly name: string
  readonly versions: ReadonlyArray<number>
  readonly oldest: number
  readonly newest: number
  /** Version `v` as a complete machine (built-in `$` commands included). */
  at(v: number): Machine<any, any>
  /** Has version `v`. */
  has(v: number): boolean
  /** Commands of version `from` as version `to`: chained upcasts or downcasts; undefined when a downcast does not exist. */
  convert(cmds: ReadonlyArray<Cmd>, from: number, to: number): Cmd[] | undefined
  /** Migrates a state of version `from` up to `to`, step by step (a fresh tree). */
  migrateState(state: unknown, from: number, to: number, ctx: MigrationContext): unknown
  /** Entries converted for version `t`, up to the first that has no downcast (the barrier) (`entriesForVersion` in core/schema/serve.ts). */
  entriesForVersion(entries: ReadonlyArray<Entry>, t: number, versionOf: (seq: number) => number): { readonly entries: Entry[]; readonly barrier: number | undefined }
  /**
   * Compat mode's outbox: pending commands of version `from` as version `to` (the hub's), in
   * order, each as one command in wire form (a `$as` of a version up to `to` as it is); stops at
   * the first that has no single downcast (`stuck`: its name).
   */
  downcastOutbox<C extends { readonly clientSeq: number; readonly name: string; readonly args: unknown; readonly encoded: unknown }>(
    cmds: ReadonlyArray<C>, from: number, to: number,
  ): { readonly out: Array<{ clientSeq: number; name: string; args: unknown }>; readonly stuck: string | undefined }
  /** Compat mode's part of a replica whose connection speaks version `hub` of this history, the app running `app`. */
  compat(hub: number, app: Machine<any, any>): CompatSession
  /** A stored document of an older version migrated to `machine`'s, or undefined when there is nothing to migrate (`upgradeStoredReplica` in core/schema/replica-upgrade.ts). */
  upgradeStoredReplica(store: ReplicaStore | undefined, docId: string, stored: StoredReplicaDoc, machine: Machine<any, any>): Promise<UpgradedReplica | undefined>
}

/** A pending command as compat mode converts it. */
export interface PendingForm {
  readonly clientSeq: number
  readonly name: string
  readonly args: unknown
  readonly encoded: unknown
  /** The number it was made under, if the hub renumbered it (CommandRequest.madeAs). */
  readonly madeAs?: number
}

/**
 * A replica's connection to a hub that runs an older version `hub` of its machine than the
 * app (compat mode: core/schema/compat.ts), made by `MachineHistory.compat`.
 */
export interface CompatSession {
  /** The machine the connection speaks: the hub's version. */
  readonly machine: Machine<any, any>
  /** A pending command had no single downcast: it and the commands after it wait for the hub's upgrade (Doc.schemaTooNew). */
  readonly blocked: boolean
  /**
   * Pending commands as submits of the hub's version (protocol 2: compact arguments), up to
   * the first that has no single downcast; `stuck` is then told the sentence that tells the
   * app why it and the commands after it wait, and the session is `blocked`: nothing more.
   */
  submits(docId: string, commands: ReadonlyArray<PendingForm>, ackedClientSeq: number, protocol: number, stuck: (message: string) => void): ClientMessage[]
  /** An own entry the hub elided, in the form the hub logged (the command's downcast; a `$as` as written); undefined if it has none. */
  ownEntry(e: Entry, command: PendingForm): Entry | undefined
  /** Whether an own entry was logged in the very form applied here (a downcast may lose something): only then is it an echo. */
  sameForm(e: Entry, command: PendingForm): boolean
  /**
   * Entries of the hub's version (`wire`: as they came, to tell own elided ones) upcast to the
   * app's. `pendingOf`: the pending command under an own entry's number. An own entry that is
   * not that command in the hub's form (a store restored from a backup numbers new commands
   * like its old life's) comes marked `foreign`.
   */
  upcast(entries: ReadonlyArray<Entry>, wire: ReadonlyArray<Entry>, pendingOf: (e: Entry) => PendingForm | undefined): Entry[]
  /** A state of the hub's version, at `seq`, migrated to the app's. */
  migrate(state: Uint8Array, docId: string, seq: number): Uint8Array
  /**
   * Whether these entries (as they came) hold a `$migrate` marker to a version newer than the
   * one this connection speaks: the hub was upgraded since it refused the app's version (or is
   * another one of a rolling deploy), and the next connection should offer the app's own.
   */
  movedOn(entries: ReadonlyArray<Entry>): boolean
}

const histories = new WeakMap<Machine<any, any>, MachineHistory>()

/** The version history of a machine made by `evolve`, or undefined for a one-version machine. */
export const historyOf = (m: Machine<any, any>): MachineHistory | undefined => histories.get(m)

/** Records `m` as a version of history `h` (called by `evolve` only). */
export const registerHistory = (m: Machine<any, any>, h: MachineHistory): void => {
  histories.set(m, h)
}

/** Names the app may not declare. */
export const isReserved = (name: string): boolean => name.startsWith("$")

export const BATCH = "$batch"
export const AS = "$as"
export const MIGRATE = "$migrate"
/** Canon's own commands of every version; other `$` names (CRDT merges `$crdt.<field>`) are a machine's. */
export const isBuiltin = (name: string): boolean => name === BATCH || name === AS || name === MIGRATE
/** The clientId of entries the hub writes itself (a `$` never passes the clientId check). */
export const HUB_CLIENT = "$hub"

/** A stored document of version `stored` opened by an app running `machine`'s older version: storage is never read by an older machine. */
export const newerStoreError = (docId: string, stored: number, machine: Machine<any, any>): CanonError =>
  canonError("machine-mismatch", `Stored document "${docId}" was written by "${machine.name}" v${stored}; this app runs v${machine.version}. Open it with the newer app (storage is never read by an older machine).`)
