/**
 * `npm run chaos`: the kill -9 scenarios with more kills than `npm test` runs.
 *
 *   npm run chaos -- [--scenario hub|client|snapshot|wide|crdt|install|both|all] [--kills N] [--client-kills N]
 *                    [--snapshot-kills N] [--wide-kills N] [--crdt-kills N] [--install-kills N] [--clients C] [--seed S] [--runs R] [--sync] [--quiet]
 *
 * --scenario        hub, client, snapshot (the hub killed while it snapshots and compacts),
 *                   wide (the hub killed with several documents, CRDT fields, presence and a
 *                   machine-version upgrade), crdt (the hub killed while stock y-websocket and
 *                   automerge-repo clients edit whole documents on /yjs and /automerge),
 *                   install (a client process killed while it installs a snapshot streamed
 *                   from the hub), both (hub and client) or all (default)
 * --kills N         SIGKILLs of the hub (default 25)
 * --snapshot-kills N  SIGKILLs of the hub in the snapshot scenario, aimed into snapshot
 *                   writes, compactions and snapshot deletions in turn (default 30)
 * --client-kills N  SIGKILLs of the client process (default 10)
 * --wide-kills N    SIGKILLs of the hub in the wide scenario (default 12)
 * --crdt-kills N    SIGKILLs of the hub in the crdt scenario (default 12)
 * --install-kills N SIGKILLs of the client in the install scenario (default 8)
 * --clients C       in-process clients submitting during the hub scenario (default 3)
 * --seed S          first seed (default random); run i uses S + i
 * --runs R          repeat each scenario R times (default 1)
 * --sync            the hub fsyncs every commit
 *
 * Prints each run's summary; on a violated invariant prints it with the seed and the
 * command that reproduces it, and exits 1. Children are SIGKILLed and temp dirs removed on
 * every exit path (Ctrl-C included).
 */
import { killAllChildren, parseFlags, removeTempDirs } from "./harness.js"
import { describeHubCrash, hubCrashRepro, runHubCrash } from "./hub-crash.js"
import { clientCrashRepro, describeClientCrash, runClientCrash } from "./client-crash.js"
import { describeSnapshotCrash, runSnapshotCrash, snapshotCrashRepro } from "./snapshot-crash.js"
import { describeWideCrash, runWideCrash, wideCrashRepro } from "./wide-crash.js"
import { crdtDocsCrashRepro, describeCrdtDocsCrash, runCrdtDocsCrash } from "./crdt-docs-crash.js"
import { describeInstallCrash, installCrashRepro, runInstallCrash } from "./install-crash.js"

const USAGE = "Usage: npm run chaos -- [--scenario hub|client|snapshot|wide|crdt|install|both|all] [--kills N] [--client-kills N] [--snapshot-kills N] [--wide-kills N] [--crdt-kills N] [--install-kills N] [--clients C] [--seed S] [--runs R] [--sync] [--quiet]"

const main = async (): Promise<number> => {
  let flags
  try {
    flags = parseFlags(process.argv.slice(2))
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`)
    return 2
  }
  if (flags.has("help")) {
    console.log(USAGE)
    return 0
  }
  const scenario = flags.get("scenario") ?? "all"
  if (!["hub", "client", "snapshot", "wide", "crdt", "install", "both", "all"].includes(scenario)) {
    console.error(`--scenario must be hub, client, snapshot, wide, crdt, install, both or all.\n${USAGE}`)
    return 2
  }
  const selected = (name: "hub" | "client" | "snapshot" | "wide" | "crdt" | "install") => scenario === name || scenario === "all" || (scenario === "both" && (name === "hub" || name === "client"))
  const kills = flags.num("kills", 25)
  const clientKills = flags.num("client-kills", 10)
  const snapshotKills = flags.num("snapshot-kills", scenario === "snapshot" ? flags.num("kills", 30) : 30)
  const wideKills = flags.num("wide-kills", scenario === "wide" ? flags.num("kills", 12) : 12)
  const crdtKills = flags.num("crdt-kills", scenario === "crdt" ? flags.num("kills", 12) : 12)
  const installKills = flags.num("install-kills", scenario === "install" ? flags.num("kills", 8) : 8)
  const clients = flags.num("clients", 3)
  const runs = flags.num("runs", 1)
  const firstSeed = flags.num("seed", Math.floor(Math.random() * 2 ** 31))
  const sync = flags.has("sync")
  const log = flags.has("quiet") ? () => {} : (l: string) => console.log(`  ${l}`)
  let failed = 0
  for (let run = 0; run < runs; run++) {
    const seed = firstSeed + run
    if (selected("hub")) {
      const r = await runHubCrash({ seed, kills, clients, sync, log })
      console.log(describeHubCrash(r))
      if (r.violations.length > 0) {
        failed++
        console.log(`VIOLATIONS (seed ${seed}):\n  ${r.violations.slice(0, 50).join("\n  ")}\nreproduce: ${hubCrashRepro({ seed, kills, clients, sync })}`)
      }
    }
    if (selected("client")) {
      const r = await runClientCrash({ seed, kills: clientKills, log })
      console.log(describeClientCrash(r))
      if (r.violations.length > 0) {
        failed++
        console.log(`VIOLATIONS (seed ${seed}):\n  ${r.violations.slice(0, 50).join("\n  ")}\nreproduce: ${clientCrashRepro({ seed, kills: clientKills })}`)
      }
    }
    if (selected("snapshot")) {
      const r = await runSnapshotCrash({ seed, kills: snapshotKills, clients, sync, log })
      console.log(describeSnapshotCrash(r))
      if (r.violations.length > 0) {
        failed++
        console.log(`VIOLATIONS (seed ${seed}):\n  ${r.violations.slice(0, 50).join("\n  ")}\nreproduce: ${snapshotCrashRepro({ seed, kills: snapshotKills, clients, sync })}`)
      }
    }
    if (selected("wide")) {
      const r = await runWideCrash({ seed, kills: wideKills, sync, log })
      console.log(describeWideCrash(r))
      if (r.violations.length > 0) {
        failed++
        console.log(`VIOLATIONS (seed ${seed}):\n  ${r.violations.slice(0, 50).join("\n  ")}\nreproduce: ${wideCrashRepro({ seed, kills: wideKills, sync })}`)
      }
    }
    if (selected("crdt")) {
      const r = await runCrdtDocsCrash({ seed, kills: crdtKills, sync, log })
      console.log(describeCrdtDocsCrash(r))
      if (r.violations.length > 0) {
        failed++
        console.log(`VIOLATIONS (seed ${seed}):\n  ${r.violations.slice(0, 50).join("\n  ")}\nreproduce: ${crdtDocsCrashRepro({ seed, kills: crdtKills, sync })}`)
      }
    }
    if (selected("install")) {
      const r = await runInstallCrash({ seed, kills: installKills, sync, log })
      console.log(describeInstallCrash(r))
      if (r.violations.length > 0) {
        failed++
        console.log(`VIOLATIONS (seed ${seed}):\n  ${r.violations.slice(0, 50).join("\n  ")}\nreproduce: ${installCrashRepro({ seed, kills: installKills, sync })}`)
      }
    }
  }
  console.log(failed === 0 ? "chaos: all invariants held" : `chaos: ${failed} run(s) violated an invariant`)
  return failed === 0 ? 0 : 1
}

const cleanup = async () => {
  await killAllChildren()
  removeTempDirs()
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void cleanup().finally(() => process.exit(130))
  })
}
main().then(
  async (code) => {
    await cleanup()
    process.exit(code)
  },
  async (e: unknown) => {
    console.error(`chaos: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
    await cleanup()
    process.exit(1)
  },
)
