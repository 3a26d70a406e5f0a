/**
 * A process that opens a LevelDB store with the real AuthorityStore, so a store of an older
 * format is migrated on open, and reports the migration on stdout for
 * test/storage-format-crash.test.ts, which SIGKILLs it in the middle.
 *
 *   node --import tsx test/support/format-migrate-child.ts --data DIR [--max-ms MS]
 *
 * Prints `OPENING <pid>`, then the migration's events (`STARTED <from> <to>`, `PROGRESS
 * <records>` after each atomic slice, `FINISHED <records>`), then `OPEN <format>` and exits 0.
 * Exits by itself when its stdin closes (the parent is gone) or after --max-ms (default 60 s).
 */
import { LevelStorage } from "../../adapters/level/index.js"
import { AuthorityStore } from "../../core/internal.js"
import { readFormat } from "../../core/store/format.js"
import { exitWithParent, parseFlags, say } from "../crash/harness.js"

const flags = parseFlags(process.argv.slice(2))
const dir = flags.get("data")
if (dir === undefined) {
  process.stderr.write("format-migrate-child: --data DIR is required\n")
  process.exit(2)
}
exitWithParent(flags.num("max-ms", 60_000))

say("OPENING", process.pid)
const storage = await LevelStorage.open(dir)
const store = new AuthorityStore(storage, {
  onMigration: (e) => {
    if (e.type === "migration-started") say("STARTED", e.from, e.to)
    else if (e.type === "migration-progress") say("PROGRESS", e.records)
    else say("FINISHED", e.records)
  },
})
await store.open()
say("OPEN", (await readFormat(storage)) ?? 0)
await storage.close()
process.exit(0)
