/**
 * npm run sim -- --seeds 500 --replicas 5 [--from 1] [--seed N] [--verbose] [knobs]
 *
 * Runs the simulator for many seeds; a failing seed prints `--seed N` (with every knob that
 * differs from its default) to replay it exactly. At the end, failures are grouped by the
 * invariant they break, with one replay line each.
 *
 * Knobs (defaults turn the whole world on):
 *   --docs N                   TodoPlus documents (2)
 *   --big-kib N                grow one document to N KiB, 0: none (2048)
 *   --drifting 0|1             a deliberately non-deterministic document (1)
 *   --hostile 0|1              hostile raw clients and forgers (1)
 *   --attacks a,b              the raw client's repertoire (all of hostile.ts ATTACKS)
 *   --app-bugs 0|1             honest replicas submit aliasing and non-plain writes (1)
 *   --read-latency 0|1         disk reads take virtual time (1)
 *   --hub-write-failures P     probability a hub disk write fails (0.01)
 *   --hub-read-failures P      probability a hub disk read fails (0.002; its own random stream)
 *   --replica-write-failures P probability a replica disk write fails (0.01)
 *   --replica-read-failures P  probability a replica disk read fails (0.002; its own random stream)
 *   --clock-steps N            steps of the hub's or a replica's wall clock, 1 s to 2 h (2; its own stream)
 *   --byte-buffers 0|1         connections count what they hold unread in bytes, as sockets do (1)
 *   --stalls N                 times a replica stops reading for 0.5-6 s (2; its own stream)
 *   --replica-quota N          times a replica's disk is nearly full for 1-8 s: batches over 16 KiB fail (2; its own stream)
 *   --faults F                 network and crash faults, 0 = none (1)
 *   --ops N --active-ms N      workload ticks and active virtual time (160, 20000)
 *   --checkpoint-every N --catch-up-page N (16, 8)
 *   --protocols mixed|v1..v4   wire protocol of replicas and hub starts (mixed)
 *   --snapshots 0|1            small snapshot policy: snapshots, compaction, streams (1)
 *   --graceful-stops P         share of the hub's random stops that close it gracefully instead of killing it (0.3)
 *   --snapshot-crashes P       probability a hub crash is aimed at a snapshot/compaction write (0.05)
 *   --stream-faults P          probability a streamed chunk is corrupted or its connection cut (0.2)
 *   --long-outages 0|1         some replica crashes last seconds (1)
 *   --mixed-fleet 0|1          a document of a machine with versions 1..3, replicas of every
 *                              version, hub and replica upgrades at random moments; v3's state
 *                              migration throws on some titles, so the hub may hold the document
 *                              at its version (counters held*, heldSeeds: seeds that did) (1)
 *   --crdt 0|1                 a document with a Yjs and an Automerge text field the replicas
 *                              type into concurrently, checked by crdt-check.ts; its machine has
 *                              v1 and v2 (SimTextV2): with the mixed fleet, apps type at their
 *                              own versions and the hub's upgrade migrates it (counters
 *                              textInsertsAtV1/V2, textMigrations, textUpdateRequired); an
 *                              upgraded v1 typist's store must open showing its v1 text
 *                              (textStoreUpgrades) (1)
 *   --crdt-automerge P         share of the typing that goes into the Automerge text (0.3)
 *   --crdt-notes P             share of a v2 app's typing that goes into `notes`, the Yjs field
 *                              SimTextV2 adds: empty where migrated, nothing to v1 apps, waiting
 *                              in a v2 app's outbox while the hub serves v1 (counters notesEdits,
 *                              notesInserts, notesTypedOnV1Hub, notesBesideV1: typed while a v1
 *                              app follows a v2 hub, notesHeld: schema-too-new waits,
 *                              notesV1Replicas: v1 apps checked to have no notes); the text's
 *                              $migrate checkpoint must be the hub's hash there, which counts the
 *                              added field (textMigrateCheckpoints) (0.2)
 *   --crdt-pastes P            probability a typing burst is 2-4 pastes of 30-100 KiB (0.02)
 *   --crdt-heavy N             a hostile writer tries heavy Automerge changes N times a second (0)
 *   --crdt-poison N            a hostile client sends Yjs values nested past what Yjs reads back, or Automerge changes far
 *                              above every op counter, N times a second (0)
 *   --memory-hog 0|1           a hostile client fills the hub's memory (maxHeldBytes 6 MiB) from a document of
 *                              its own, holds it for half the active phase, then leaves (0)
 *   --cpu-hog 0|1              a hostile client, as three client ids behind the replicas' address, sends commands
 *                              standing for 20 ms of slow app code each, as fast as the hub reads it; the hub must
 *                              slice them and charge each id and the address (0)
 *   --flag-bursts N            bursts of large commands whose compact arguments outweigh their
 *                              canonical form, into the big document (1)
 *   --churn N                  bursts of subscribes to fresh documents by a raw client (1)
 *   --deaf-askers N            raw clients that stop reading and ask for errors past the hub's
 *                              hard limit, N of them; the hub runs with small output limits (0)
 *   --unsent-kib N             the hub-wide bound on unsent bytes over all connections, in KiB:
 *                              stalled replicas and snapshots fill it, connections are cut (1024; 0 off)
 *   --presence-churn N         raw clients that re-subscribe hundreds of times at once holding a
 *                              large presence, then leave; a watcher checks the pacing (0)
 *   --rollbacks N              devices whose disks are restored from their backups N times, one
 *                              moved to a new device from its backup, on a document of their own (2; rollback.ts)
 * Harness flags: --first (stop at the first failing seed), --skip 3,17 (seeds to leave out),
 * --stats (print the counters of every seed summed, as one JSON line "stats {...}"),
 * --quiet (only the first failure line of each failing seed), --live (trace lines as they
 * happen, on stderr: for a seed that does not finish).
 */
import { readFileSync } from "node:fs"
import { runWorld } from "./world.js"

const args = process.argv.slice(2)
if (args.includes("--help") || args.includes("-h")) {
  // The help is this file's header comment: one text to keep true.
  const header = readFileSync(new URL(import.meta.url), "utf8").match(/^\/\*\*\n([\s\S]*?)\n \*\//)![1]!
  console.log(header.replace(/^ \* ?/gm, ""))
  process.exit(0)
}
// The run itself is world.ts (serve.ts runs many in one process).
process.exit(await runWorld(args, (l) => console.log(l), (l) => console.error(l)))
