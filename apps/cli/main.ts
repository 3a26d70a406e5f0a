/**
 * The `canon` command line: `canon serve ...`, `canon inspect DIR [docId]` and
 * `canon compact DATA [docId]`. Each command prints its own usage (`canon serve --help`,
 * `canon inspect --help`, `canon compact --help`).
 */
import { serve } from "./serve.js"
import { INSPECT_USAGE, inspect, parseInspectArgs } from "./inspect.js"
import { COMPACT_USAGE, compact, parseCompactArgs } from "./compact.js"
import { fromInvocationDir } from "../hub/invocation-dir.js"
import { progressReporter } from "./progress.js"
import { ConfigError } from "../hub/config.js"

const USAGE = `Usage: canon COMMAND [options]   (from a checkout: npm run canon -- COMMAND [options])
  canon serve [options]          the hub alone, for your own machines (canon serve --help)
  canon inspect DIR [docId]      what a hub's data directory holds (canon inspect --help)
  canon compact DATA [docId]     snapshot documents and delete the log behind (canon compact --help)`

/** The exit code, or -1 while a hub keeps running. */
const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command, ...rest] = argv
  if (command === "serve") return (await serve(rest)) === "running" ? -1 : 0
  if (command === "inspect") {
    const args = parseInspectArgs(rest)
    if (args === "help") {
      console.log(INSPECT_USAGE)
      return 0
    }
    return inspect(fromInvocationDir(args.dir), args.docId, args.machines === undefined ? undefined : fromInvocationDir(args.machines), { log: (l) => console.log(l), progress: progressReporter(process.stderr) })
  }
  if (command === "compact") {
    const args = parseCompactArgs(rest)
    if (args === "help") {
      console.log(COMPACT_USAGE)
      return 0
    }
    return compact({ ...args, dir: fromInvocationDir(args.dir), machines: args.machines === undefined ? undefined : fromInvocationDir(args.machines) }, { log: (l) => console.log(l), progress: progressReporter(process.stderr, 1_000) })
  }
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE)
    return 0
  }
  console.error(`Unknown command "${command}".\n${USAGE}`)
  return 2
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exit(code) },
  (e: unknown) => {
    console.error(e instanceof ConfigError ? e.message : `canon: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(e instanceof ConfigError ? 2 : 1)
  },
)
