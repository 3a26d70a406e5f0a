/**
 * The `canon` command line: `canon serve ...` and `canon inspect DIR [docId]`.
 */
import { serve } from "./serve.js"
import { inspect } from "./inspect.js"
import { ConfigError } from "../hub/config.js"

const USAGE = `Usage:
  canon serve --data DIR --host H --port P [--public-url URL] [--machines MODULE] [--cert FILE --key FILE] [--sync]
  canon inspect DIR [docId] [--machines MODULE]`

/** A progress bar on stderr for long replays (only when stderr is a terminal). */
const progress = (done: number, total: number): void => {
  if (!process.stderr.isTTY || total < 10_000) return
  const width = 30
  const filled = Math.round((done / total) * width)
  process.stderr.write(`\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${Math.floor((done / total) * 100)}% ${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")}`)
  if (done >= total) process.stderr.write("\n")
}

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command, ...rest] = argv
  if (command === "serve") {
    await serve(rest)
    return -1 // keeps running
  }
  if (command === "inspect") {
    const machinesAt = rest.indexOf("--machines")
    const machines = machinesAt >= 0 ? rest[machinesAt + 1] : undefined
    const positional = machinesAt < 0 ? rest : rest.filter((_, i) => i !== machinesAt && i !== machinesAt + 1)
    const [dir, docId] = positional
    if (dir === undefined) {
      console.error(USAGE)
      return 2
    }
    return inspect(dir, docId, machines, { log: (l) => console.log(l), progress })
  }
  console.error(USAGE)
  return command === undefined || command === "help" || command === "--help" ? 0 : 2
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exit(code) },
  (e: unknown) => {
    console.error(`canon: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(e instanceof ConfigError ? 2 : 1)
  },
)
