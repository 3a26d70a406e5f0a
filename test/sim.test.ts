/**
 * The seeded fault simulator under jest: a bounded number of seeds per part of the world on
 * every run (the CLI, `npm run sim`, runs as many as you like, every part at once and with
 * a document of megabytes), that the faults and attacks really happen, determinism, and
 * proof that the checker bites.
 *
 * Each part of the world has its own test, so a red run says which invariant the engine
 * lets through: the core world, snapshots and compaction with mixed protocols, a large
 * document, failed replica writes, app code that aliases or writes non-plain values, hostile
 * clients (protocol abuse; oversized arguments), arguments larger compact than canonical, a mixed fleet of machine versions with
 * rolling upgrades, collaborative text (a Yjs field typed into concurrently).
 *
 * The worlds run in the sim CLI's code in a child process (tsx): inside jest's vm context the
 * engine's hashing runs many times slower, and a seed of the full world would take tens of
 * seconds. One child (serve.ts, through SimServer) runs the worlds one after another: tsx's
 * compile of the engine and the JIT's warm-up are paid once, not once per world (some 3 s of
 * CPU each). A world prints there what `npm run sim` prints with its arguments, and a failing
 * seed's replay line (in the assertion message) replays it in a process of its own: the replay
 * tests below compare a served seed with the same seed in a process of its own.
 */
import { runSimulation } from "./sim/simulation.js"
import { REPO, SimServer, prepareCopy, runSim } from "./sim/mutant-runner.js"
import { MUTANTS } from "./sim/mutant-table.js"
import { Flaky } from "./support/machines.js"

/** How long a world may take in the CLI (runSim kills it after, with its output in the failure). */
const SIM_CHILD_MS = 120_000
/**
 * Each test's jest timeout: above its simulator's own bound, so a slow or busy machine fails
 * a test with the simulator's output (or passes it), never with jest's bare timeout while the
 * child runs on.
 */
const SIM_TEST_MS = SIM_CHILD_MS + 30_000
/** A test whose `n` worlds wait for one another in the one child. */
const simTestMs = (n: number) => n * SIM_CHILD_MS + 30_000

/** The child that runs the worlds (see the header); ended after the last test. */
const sim = new SimServer(REPO)
afterAll(() => sim.close())

/** Everything but the parts each test turns on. */
/** Faults added to the whole world after the pinned seeds below were found: off, so each seed stays in its world. */
/** Links that count unread bytes, replicas that stop reading, nearly full replica disks and stores that go back in time joined the world after the seeds pinned with this. */
const LATEST_FAULTS_OFF = ["--byte-buffers", "0", "--stalls", "0", "--replica-quota", "0", "--rollbacks", "0"]
const LATER_FAULTS_OFF = ["--hub-read-failures", "0", "--replica-read-failures", "0", "--clock-steps", "0", ...LATEST_FAULTS_OFF]
const CORE = ["--hostile", "0", "--app-bugs", "0", "--replica-write-failures", "0", "--big-kib", "0", "--mixed-fleet", "0", "--rollbacks", "0"]
/** Without the attacks that make a seed slow (megabyte arguments). */
const PROTOCOL_ATTACKS = "legit,invalid-args,unknown-command,gap,huge-seq,duplicate,duplicate-in-batch,forged-id"
const STATE_ATTACKS = "legit,proto-id,proto-fields,alias,stamp"

/**
 * Runs seeds 1..n of a world in the CLI; returns the failing seeds' first lines (empty: all
 * passed), and a line for each counter of `happen` that stayed 0: a world whose knob did not
 * take effect tests nothing (the hostile worlds once ran without a hostile client).
 */
const failing = async (n: number, world: ReadonlyArray<string>, replicas = 4, happen: ReadonlyArray<string> = []): Promise<string[]> => {
  const run = await sim.run([...world, "--seeds", String(n), "--replicas", String(replicas), ...(happen.length > 0 ? ["--stats"] : [])], { timeoutMs: SIM_CHILD_MS })
  const summary = new RegExp(`^sim: ${n} seeds`, "m").test(run.output)
  const lines = run.output.split("\n").filter((l) => l.startsWith("FAIL") || l.startsWith("  ") && !l.startsWith("    "))
  const totals = JSON.parse(/^stats (.*)$/m.exec(run.output)?.[1] ?? "{}") as Record<string, number>
  const absent = summary ? happen.filter((k) => !((totals[k] ?? 0) > 0)).map((k) => `${k} never happened in this world`) : []
  return summary && run.failingSeeds.length === 0 && absent.length === 0 ? [] : [summary ? "" : `the simulator did not finish: ${run.output.slice(-500)}`, ...lines, ...absent].filter(Boolean)
}

test("core world, 3 seeds: 3 documents (one drifting), crashes, partitions, disk latency, failed hub writes, snapshots, mixed protocols", async () => {
  expect(await failing(3, CORE)).toEqual([])
}, SIM_TEST_MS)

test("snapshots and compaction: crashes aimed at snapshot writes, corrupted and cut streams, long outages, protocol 2 only and 1 only (2 + 2 seeds)", async () => {
  const heavy = [...CORE, "--snapshot-crashes", "0.2", "--stream-faults", "0.4"]
  const [v2, v1] = await Promise.all([failing(2, [...heavy, "--protocols", "v2"]), failing(2, [...heavy, "--protocols", "v1", "--from", "3"])])
  expect([...v2, ...v1]).toEqual([])
}, simTestMs(2))

test("a large document: 32-64 KiB commands, paged catch-up, snapshots and streams of it, to replicas that stop reading for seconds; links count unread bytes, so the hub's followers pause at their high-water mark and resume once drained (3 seeds)", async () => {
  // Counted in messages (before), nothing reached a byte limit: a hub whose paused followers
  // never resumed (mutant drained-never-resumed) survived 20 seeds of its world; counted in
  // bytes, the mutant harness catches it (seed 2 of 4 replicas, 12 stalls a seed).
  const happen = ["entries:big", "stalls", "hubUnreadPastHighWater"]
  expect(await failing(3, [...CORE, "--big-kib", "2048", "--drifting", "0", "--docs", "1", "--stalls", "6"], 3, happen)).toEqual([])
}, SIM_TEST_MS)

test("arguments whose compact form outweighs their canonical one: submits, a fan-out of two writers and catch-up pages of the hub's default size stay under the frame limit (2 seeds)", async () => {
  // Cut by canonical size, the client's submits (mutant cut-submits-canonical) or the hub's
  // pages (mutant cut-entries-canonical) were frames over 1 MiB, refused at every reconnect.
  // Its frames reach 1 MiB: the unsent bound must hold one reader's high-water mark (1 MiB) and
  // one frame, or a reader alone sent such pages is cut at every reconnect (as servers refuse).
  const world = [...CORE, "--big-kib", "64", "--flag-bursts", "3", "--catch-up-page", "512", "--protocols", "v2", "--unsent-kib", "2048"]
  expect(await failing(2, world, 4, ["flagBursts"])).toEqual([])
}, SIM_TEST_MS)

test("a client subscribing to hundreds of fresh documents in bursts: the hub reads no more of it than it has handled and loads no faster than its bucket (2 seeds)", async () => {
  // Before maxQueuedMessages (mutant queue-unbounded) the hub read on past every load it had
  // not finished; before the load bucket (mutant loads-free) it loaded as fast as it could.
  expect(await failing(2, [...CORE, "--hostile", "1", "--attacks", "legit", "--churn", "2"], 4, ["churnBursts", "churnLoads"])).toEqual([])
}, SIM_TEST_MS)

test("clients that never read and ask for error after error: the hub holds at most its hard limit unread for any connection and closes them slow-consumer (2 seeds)", async () => {
  // Before the output gate covered the hub's own answers (mutant replies-ungated) they piled up unread without bound.
  expect(await failing(2, [...CORE, "--hostile", "1", "--attacks", "legit", "--deaf-askers", "3"], 4, ["deafBursts", "deafClosedSlow"])).toEqual([])
}, SIM_TEST_MS)

test("a client leaving and coming back in a loop while holding a large presence: a reader is sent its presence at most once a tick and told when it leaves, and its catch-ups stay within its budget (2 seeds)", async () => {
  // Before presence went out on the tick only (mutant presence-leave-at-once), every leave was sent to every follower at once;
  // relayed first come first served (mutant presence-first-come), a flood held an honest cursor back for seconds.
  expect(await failing(2, [...CORE, "--hostile", "1", "--attacks", "legit", "--presence-churn", "3"], 4, ["presenceChurnBursts", "presenceLeavesSeen", "presenceFloods"])).toEqual([])
}, SIM_TEST_MS)

test("stores that go back in time: devices restored from their backups and moved to new devices resend what the hub applied since and number new commands with its numbers; each command is applied once, none is lost or confirmed by another's entry (3 seeds)", async () => {
  // Before, the hub forgot acknowledged outcomes (mutant acked-forgotten: the backup's outbox
  // applied twice), the replica took an own entry for whatever pending command had its number
  // (mutant own-entry-by-number: a new command confirmed and never applied), and a renumbering
  // moved commands the hub had answered (applied twice): 8 of 12 seeds of the whole world failed.
  expect(await failing(3, [...CORE, "--rollbacks", "4", "--docs", "1", "--drifting", "0"], 2, ["rollbackRestores", "rollbackMoves", "rollbackRenumbered"])).toEqual([])
}, SIM_TEST_MS)

test("failed replica writes, at random and on a nearly full disk (every batch over 16 KiB), are reported to the app and lose no command (3 seeds)", async () => {
  expect(await failing(3, [...CORE, "--replica-write-failures", "0.03", "--replica-quota", "6"], 4, ["replicaWriteFailures", "replicaQuotaFailures"])).toEqual([])
}, SIM_TEST_MS)

test("disks failing reads, the hub's (loads, catch-up pages, snapshots, client records) and the replicas' (opening a client or a document): the replica asks again and nothing is called corrupt (seed 2)", async () => {
  // Before, a load that failed left the document unserved on that connection (its submits
  // answered not-subscribed and forgotten: "r2 still has 44 pending"), and a snapshot read that
  // failed at load was taken for a snapshot that does not verify ("compacted up to seq N but
  // no stored snapshot of it verifies"). Seed 2 of this world has both.
  expect(await failing(1, [...CORE, "--hub-read-failures", "0.05", "--replica-read-failures", "0.05", "--from", "2", ...LATEST_FAULTS_OFF], 4, ["hubReadFailures", "replicaReadFailures"])).toEqual([])
}, SIM_TEST_MS)

test("wall clocks stepped, the hub's and the replicas' (NTP, a resumed VM), by a second to two hours either way: rates and pacing run on steady clocks (seed 4)", async () => {
  // Before, the hub's rate buckets refilled by its wall clock: stepped back, every client went
  // an hour into debt ("More than 1000 messages per second": seed 4 of this world), and stepped
  // forward they filled at once (a churner's loads past its bucket: seed 10 of the whole world).
  expect(await failing(1, [...CORE, "--clock-steps", "6", "--from", "4", ...LATEST_FAULTS_OFF], 4, ["clockSteps"])).toEqual([])
}, SIM_TEST_MS)

test("the hub-wide bound on unsent bytes cuts connections (stalled replicas, the big document's snapshots) and nothing is lost (seeds 1 to 3 of the whole world, 5 replicas)", async () => {
  // The simulator's links put the hub's sends through the WebSocket server's UnsentBudget
  // (test/sim/unsent.ts). At a bound under what one reader is sent while it reads, a fresh
  // replica alone was cut at every reconnect and never synced (5 seeds of 6 at 256 KiB).
  expect(await failing(3, [], 5, ["unsentCuts"])).toEqual([])
}, SIM_TEST_MS)

test("a refused clientSeq gap frees its number: the next command sent under it is judged as new (seed 20 of the whole world, 5 replicas)", async () => {
  // Seed 20 failed with "raw gap was answered seq:7" before the hostile client marked the gap refused.
  // Pinned to the world the seed was found in (before the text document, the flags bursts and the churner joined it).
  expect(await failing(1, ["--from", "20", "--mixed-fleet", "0", "--crdt", "0", "--flag-bursts", "0", "--churn", "0", ...LATER_FAULTS_OFF], 5)).toEqual([])
}, SIM_TEST_MS)

test("a replica that resubscribes while the state it asked for is on its way asks again: the hub's follower starts afresh (seed 275 of the whole world, 5 replicas)", async () => {
  // A snapshot streamed to r3 was corrupted (a fault the world injects), r3 asked for the state,
  // then resubscribed on a gap before the hub's paced answer: the new follower did not want the
  // state, r3 thought it was coming, and every later desync was ignored (drifting, seq 68).
  // Pinned to the world the seed was found in.
  const run = await sim.run(["--seed", "275", "--replicas", "5", ...LATER_FAULTS_OFF], { timeoutMs: SIM_CHILD_MS })
  expect(run.failingSeeds).toEqual([])
}, SIM_TEST_MS)

test("a Yjs change refused for needing what the replica's own later command carried, answered in the same hub batch, goes again (seed 296 of the whole world, 5 replicas)", async () => {
  // r1's insert was refused (crdt-missing-deps) in the batch that accepted the resend of the
  // paste it sat in; entries come before results, so the resend was confirmed before the
  // refusal was read, and the insert was told rejected and lost.
  // Pinned to the world the seed was found in.
  const run = await sim.run(["--seed", "296", "--replicas", "5", ...LATER_FAULTS_OFF], { timeoutMs: SIM_CHILD_MS })
  expect(run.failingSeeds).toEqual([])
}, SIM_TEST_MS)

test("a refusal whose write failed is stored with its replacements or not at all: after a crash, no change is refused as a copy of itself (seed 567 of the whole world, 5 replicas)", async () => {
  // r0's refusal of two oversized pastes failed to write; the retry's outbox write stored the
  // tombstones and resends alone, which were sent and taken. r0 crashed with the refused
  // commands still in its outbox: answered again, replaced again, and the hub refused the
  // copies (crdt-equivocation), so the app was told `rejected` of text the document holds.
  const run = await sim.run(["--seed", "567", "--replicas", "5", ...LATEST_FAULTS_OFF], { timeoutMs: SIM_CHILD_MS })
  expect(run.failingSeeds).toEqual([])
}, SIM_TEST_MS)

test("older-version followers are served entries while the log has them (seeds 82, 120 and 194 of the whole world, 5 replicas)", async () => {
  // The hub moved its compaction horizon in memory before the record was written: a v2
  // follower between the two was told update-required (seed 82), for good when the write then
  // failed (seed 120); the horizon now moves once recorded. Seed 194: the checker judged
  // "behind" by durable deletes instead of the recorded horizon.
  // Pinned to the world the seeds were found in (before the text document, the flags bursts and the churner joined it).
  const runs = await Promise.all(["82", "120", "194"].map((seed) => failing(1, ["--from", seed, "--crdt", "0", "--flag-bursts", "0", "--churn", "0", ...LATER_FAULTS_OFF], 5)))
  expect(runs.flat()).toEqual([])
}, simTestMs(3))

test("app code that aliases or writes non-plain values is a rejection, never a broken document (2 seeds)", async () => {
  expect(await failing(2, [...CORE, "--app-bugs", "1"], 4, ["appBugs"])).toEqual([])
}, SIM_TEST_MS)

test("hostile clients: bad commands, clientSeq gaps and duplicates, forged clientIds; prototype keys, aliasing, non-plain values (2 + 2 seeds)", async () => {
  const [protocol, state] = await Promise.all([
    failing(2, [...CORE, "--hostile", "1", "--attacks", PROTOCOL_ATTACKS], 4, ["hostile", "forged", "hostileAnswered"]),
    failing(2, [...CORE, "--hostile", "1", "--attacks", STATE_ATTACKS, "--from", "3"], 4, ["hostile", "hostileAnswered"]),
  ])
  expect([...protocol, ...state]).toEqual([])
}, simTestMs(2))

test("hostile CRDT work: a writer of few-byte, many-op Automerge changes pays for them, and what the hub answered it stays within its budget (1 seed, 10 s)", async () => {
  // Without the charge (mutant crdt-work-free) this seed fails checkCrdtWork.
  expect(await failing(1, [...CORE, "--hostile", "1", "--attacks", "legit", "--crdt-heavy", "20", "--ops", "80", "--active-ms", "10000"], 3, ["crdtHeavyAccepted", "rateHolds"])).toEqual([])
}, SIM_TEST_MS)

test("hostile CRDT values: Yjs updates nested past what Yjs reads back, and Automerge changes far above every op counter, are refused, and the text document stays whole (1 seed)", async () => {
  // Without the bound (mutant yjs-values-unbounded) this seed breaks the hub's text field and loses acknowledged text;
  // without the counter bound (mutant automerge-counters-unbounded) a far-counter change is accepted.
  expect(await failing(1, [...CORE, "--hostile", "1", "--attacks", "legit", "--crdt-poison", "5", "--ops", "60", "--active-ms", "6000"], 3, ["crdtPoisonRefused"])).toEqual([])
}, SIM_TEST_MS)

test("a memory hog: a client filling the hub's memory from a document of its own keeps the hub within maxHeldBytes, the replicas' commands told hub-full land once it leaves (6 seeds, 10 s)", async () => {
  // Without the charge (mutant memory-growth-uncharged) the first seed fails the memory invariant.
  expect(await failing(6, [...CORE, "--hostile", "1", "--attacks", "legit", "--memory-hog", "1", "--ops", "80", "--active-ms", "10000"], 3, ["hogFilled", "hubFullTold"])).toEqual([])
}, SIM_TEST_MS)

test("a CPU hog: a client sending slow commands as fast as the hub reads it never holds the hub's event loop past a batch slice, and gets no more of its time than its work budget, each of its three ids and their address (4 seeds, 10 s)", async () => {
  // Without the slices (mutant batch-unsliced) and without the charge (mutant command-work-uncharged) the first seed fails.
  expect(await failing(4, [...CORE, "--hostile", "1", "--attacks", "legit", "--cpu-hog", "1", "--big-kib", "0", "--ops", "80", "--active-ms", "10000"], 3, ["cpuHogJudgedMs", "rateHolds"])).toEqual([])
}, SIM_TEST_MS)

test("oversized and deeply nested arguments are refused (1 seed, bounded)", async () => {
  const world = ["--docs", "1", "--big-kib", "0", "--drifting", "0", "--attacks", "oversize-under-frame,oversize-over-frame,oversize-mid,oversize-small,deep", "--app-bugs", "0", "--replica-write-failures", "0", "--ops", "80"]
  expect(await failing(1, world, 1)).toEqual([])
}, SIM_TEST_MS)

// Seeds chosen so that every kind of fault happens in them (seeds 3-4 have no corrupted chunk
// since links pause under the hub's input flow control): the point is that each one is
// survived, not which seed.
test("the whole world at once, and the faults and attacks actually happen (seeds 5-6)", async () => {
  const run = await sim.run(["--seeds", "2", "--from", "5", "--replicas", "4", "--big-kib", "128", "--stream-faults", "0.6", "--stats"], { timeoutMs: SIM_CHILD_MS })
  expect(run.failingSeeds).toEqual([])
  const totals = JSON.parse(/^stats (.*)$/m.exec(run.output)?.[1] ?? "{}") as Record<string, number>
  for (const k of [
    "drops", "partitions", "replicaCrashes", "hubCrashes", "hostile", "forged", "hubWriteFailures", "replicaWriteFailures", "desyncs", "localRefusals", "rateHolds", "secondTabs",
    "entries:todo-0", "entries:big", "snapshotCrashes", "streams", "installs", "corruptChunks", "cutStreams", "compacted", "hostileAnswered",
    "hubUpgrades", "replicaUpgrades", "entries:versioned", "textEdits", "textAckedInserts", "textAckedDeletes", "entries:text", "stalls",
  ]) {
    expect([k, totals[k]]).toEqual([k, expect.any(Number)])
    expect([k, totals[k]! > 0]).toEqual([k, true])
  }
}, SIM_TEST_MS)

test("a seed replays exactly, in a process of its own as in the tests' child after other worlds (same trace and digest; another seed differs)", async () => {
  const world = ["--replicas", "3", "--big-kib", "0", "--ops", "80", "--verbose", "--mixed-fleet", "0"]
  const [a, b, c] = await Promise.all([sim.run([...world, "--seed", "7"]), runSim(REPO, [...world, "--seed", "7"]), sim.run([...world, "--seed", "8"])])
  const digest = (out: string) => /digest (\w+)/.exec(out)?.[1] ?? out.slice(0, 300)
  expect(digest(a.output)).toMatch(/^[0-9a-f]{16}$/)
  expect(b.output.replace(/\(\d+\.\d s, [\d.]+ seeds\/s\)/, "")).toBe(a.output.replace(/\(\d+\.\d s, [\d.]+ seeds\/s\)/, ""))
  expect(digest(c.output)).not.toBe(digest(a.output))
}, simTestMs(2))

/** The collaborative text with the rest of the world quick: one TodoPlus document beside it, every fault on. */
const TEXT = ["--docs", "1", "--big-kib", "0", "--drifting", "0", "--mixed-fleet", "0", "--hostile", "0", "--crdt", "1", "--rollbacks", "0"]

test("collaborative text: replicas type into a Yjs and an Automerge text field concurrently across drops, partitions, crashes, disk faults and snapshots; every acknowledged insert survives unless an acknowledged delete removed it, and all texts are equal (2 seeds)", async () => {
  const run = await sim.run([...TEXT, "--seeds", "2", "--replicas", "5", "--stats"], { timeoutMs: 60_000 })
  expect([run.failingSeeds, run.output.split("\n").filter((l) => l.startsWith("  ") && !l.startsWith("    "))]).toEqual([[], []])
  const totals = JSON.parse(/^stats (.*)$/m.exec(run.output)?.[1] ?? "{}") as Record<string, number>
  for (const k of ["textEdits", "textAckedInserts", "textAckedDeletes", "textChars", "textAckedInserts:am", "textAckedDeletes:am", "textChars:am", "textAckedInserts:notes", "textChars:notes", "replicaCrashes", "hubCrashes", "partitions", "installs", "compacted"]) {
    expect([k, (totals[k] ?? 0) > 0]).toEqual([k, true])
  }
}, SIM_TEST_MS)

test("the text checker bites: a hub that refuses honest Yjs deletes loses the keystrokes merged with them, and crdt-check says so (1 seed, mutant crdt-refuse-honest-delete)", async () => {
  const copy = prepareCopy(MUTANTS.find((m) => m.name === "crdt-refuse-honest-delete"))
  try {
    const run = await runSim(copy.dir, [...TEXT, "--seeds", "1", "--replicas", "5"], { timeoutMs: 60_000 })
    expect(run.failingSeeds).toEqual([1])
    expect(run.output).toMatch(/^ {2}crdt: 1 seeds; crdt: text\.text: r\d's insert ⟨r\d:\d+⟩ was stored in its outbox but never acknowledged \(text\|\w+:\d+ rejected \(invalid-args\)\)/m)
  } finally {
    copy.dispose()
  }
}, SIM_TEST_MS)

/** The mixed fleet with the rest of the world quick: one TodoPlus document, no big one. */
const FLEET = ["--docs", "1", "--big-kib", "0", "--drifting", "0", "--mixed-fleet", "1", "--rollbacks", "0"]

test("a mixed fleet: machine versions 1..3, the hub upgraded once, replicas upgraded at random moments or never, all faults on (seeds 4-6); the upgrades, compat mode and update-required happen", async () => {
  // Seeds 4-6: an app told update-required with commands kept is upgraded soon after half the
  // time (simulation.ts keptRng), so an upgrade with a kept outbox happens in seeds 4 and 6 of
  // 1-24 in the world of 2026-12-06 (the replicas' presence moved them from 11 and 12; by
  // chance alone it was 3 seeds of 40). Seeds move when the world's draws or timings do:
  // re-pick them with --verbose (a line of counters per seed) when this says one did not happen.
  const run = await sim.run([...FLEET, "--seeds", "3", "--from", "4", "--replicas", "5", "--stats", "--quiet"], { timeoutMs: SIM_CHILD_MS })
  expect([run.failingSeeds, run.output.split("\n").filter((l) => l.startsWith("  ") && !l.startsWith("    "))]).toEqual([[], []])
  const totals = JSON.parse(/^stats (.*)$/m.exec(run.output)?.[1] ?? "{}") as Record<string, number>
  for (const k of ["hubUpgrades", "replicaUpgrades", "updateRequired", "compatRefusals", "upgradesWithKeptOutbox", "entries:versioned", "hubCrashes", "compacted"]) {
    expect([k, (totals[k] ?? 0) > 0]).toEqual([k, true])
  }
  expect(totals.hubUpgrades).toBe(3)
}, SIM_TEST_MS)

test("a mixed-fleet seed replays exactly, in a process of its own as in the tests' child, and a failing one prints its replay line", async () => {
  const world = [...FLEET, "--replicas", "4", "--ops", "80", "--verbose"]
  const [a, b] = await Promise.all([sim.run([...world, "--seed", "4"]), runSim(REPO, [...world, "--seed", "4"])])
  const strip = (out: string) => out.replace(/\(\d+\.\d s, [\d.]+ seeds\/s\)/, "")
  expect(a.output).toMatch(/^(ok --seed 4 digest [0-9a-f]{16}|FAIL --seed 4 \(replay: npm run sim -- --seed 4 --replicas 4 --docs 1 .*--mixed-fleet 1 .*--verbose\))/m)
  expect(a.output).toMatch(/"hubUpgrades":1|hub upgrade v[12] -> v3/)
  expect(strip(b.output)).toBe(strip(a.output))
}, SIM_TEST_MS)

test("a non-deterministic machine is caught by checkpoints and healed", async () => {
  let desyncs = 0
  for (let seed = 1; seed <= 3; seed++) {
    const r = await runSimulation({ seed, replicas: 3, machine: Flaky, checkpointEvery: 8, nondeterministic: true })
    expect(r.failures).toEqual([])
    desyncs += r.stats.desyncs!
  }
  expect(desyncs).toBeGreaterThan(0)
}, SIM_TEST_MS)

test("without checkpoints the same machine ends diverged, and the checker says so", async () => {
  // Snapshots off too: a verified snapshot's hash is a checkpoint of its own (a replica that
  // replayed up to it compares), and this test is about what the checker sees without any.
  const r = await runSimulation({ seed: 1, replicas: 3, machine: Flaky, checkpointEvery: Infinity, quietCheckpointMs: Infinity, nondeterministic: true, snapshots: false })
  expect(r.stats.desyncs).toBe(0)
  expect(r.failures.some((f) => f.startsWith("convergence:"))).toBe(true)
}, SIM_TEST_MS)
