/**
 * Hub settings from flags and environment variables, with defaults that work on a fresh
 * machine: LevelDB in ./data, HTTP and WebSocket on 127.0.0.1:8787.
 */
export interface HubConfig {
  readonly dataDir: string
  readonly host: string
  readonly port: number
  /** The URL clients are told to use (a hub behind a proxy differs from its bind address). */
  readonly publicUrl: string | undefined
  /** fsync every commit. */
  readonly sync: boolean
  /** PEM files for HTTPS/WSS. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined
  /** A module exporting the machines to serve (`canon serve`). */
  readonly machines?: string | undefined
}

const HELP = `Usage: npm start -- [--data DIR] [--host H] [--port P] [--public-url URL] [--sync]
  --data DIR        LevelDB directory (env CANON_DATA, default ./data)
  --host H          address to bind (env CANON_HOST, default 127.0.0.1; 0.0.0.0 for all)
  --port P          port (env CANON_PORT, default 8787)
  --public-url URL  the URL clients use, if not http://host:port (env CANON_PUBLIC_URL)
  --sync            fsync every commit: survives power loss, slower (env CANON_SYNC=1)
  --cert FILE --key FILE   serve HTTPS and WSS with this certificate (PEM)
  --machines MODULE        (canon serve) a module exporting the machines to serve`

export class ConfigError extends Error {}

export const parseConfig = (argv: ReadonlyArray<string>, env: Record<string, string | undefined>): HubConfig | "help" => {
  const flags = new Map<string, string>()
  const bools = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") return "help"
    if (a === "--sync") { bools.add("sync"); continue }
    if (!a.startsWith("--")) throw new ConfigError(`Unexpected argument "${a}".\n${HELP}`)
    const value = argv[i + 1]
    if (value === undefined || value.startsWith("--")) throw new ConfigError(`${a} needs a value.\n${HELP}`)
    flags.set(a.slice(2), value)
    i++
  }
  for (const k of flags.keys()) {
    if (!["data", "host", "port", "public-url", "cert", "key", "machines"].includes(k)) throw new ConfigError(`Unknown option --${k}.\n${HELP}`)
  }
  const portText = flags.get("port") ?? env.CANON_PORT ?? "8787"
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`Port "${portText}" is not a port number (0-65535).`)
  const cert = flags.get("cert")
  const key = flags.get("key")
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError("--cert and --key go together: give both to serve HTTPS, or neither.")
  return {
    tls: cert !== undefined && key !== undefined ? { cert, key } : undefined,
    machines: flags.get("machines"),
    dataDir: flags.get("data") ?? env.CANON_DATA ?? "./data",
    host: flags.get("host") ?? env.CANON_HOST ?? "127.0.0.1",
    port,
    publicUrl: flags.get("public-url") ?? env.CANON_PUBLIC_URL,
    sync: bools.has("sync") || env.CANON_SYNC === "1",
  }
}

export const helpText = HELP
