/**
 * Hub settings from flags and environment variables, with defaults that work on a fresh
 * machine: LevelDB in ./data, HTTP and WebSocket on 127.0.0.1:8787, every commit fsynced
 * (acknowledged means durable). Two commands take them: `npm start` (the demo board) and
 * `canon serve` (your machines); each has its own usage text.
 */
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, MIN_MAX_UNSENT_BYTES, proxyTrust, socketCapFor, type TrustProxy } from "../../adapters/ws/index.js"
import { parseOrigins } from "./browser-guard.js"
import { fromInvocationDir } from "./invocation-dir.js"

export interface HubConfig {
  readonly dataDir: string
  readonly host: string
  readonly port: number
  /** The URL clients are told to use (a hub behind a proxy differs from its bind address). */
  readonly publicUrl: string | undefined
  /** fsync every commit before acknowledging it. On unless --no-sync / CANON_SYNC=0. */
  readonly sync: boolean
  /** PEM files for HTTPS/WSS. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined
  /** A module exporting the machines to serve, and optionally auth hooks (`canon serve`). */
  readonly machines?: string | undefined
  /** WebSocket connections one client address may hold. Default 64. */
  readonly maxConnectionsPerAddress?: number | undefined
  /**
   * TCP sockets one client address may hold at once, of any kind (page requests, sockets that
   * have sent nothing yet, WebSockets): more are destroyed as they connect. Default twice
   * maxConnectionsPerAddress (adapters/ws/socket-cap.ts). A trusted proxy's address is held
   * to maxSockets only.
   */
  readonly maxSocketsPerAddress?: number | undefined
  /** TCP sockets the hub holds at once. Default three quarters of the open-file limit (apps/hub/socket-budget.ts). */
  readonly maxSockets?: number | undefined
  /** Reverse proxies whose X-Forwarded-For names the client. Default none. */
  readonly trustProxy?: TrustProxy | undefined
  /** Leading bits of an IPv6 address that count as one client address. Default 64. */
  readonly ipv6Prefix?: number | undefined
  /** Largest document state, in MiB (the hub's maxDocumentBytes). Default 256; whole CRDT documents keep their own 32. */
  readonly maxDocumentMib?: number | undefined
  /** Bytes all WebSockets together may hold unsent, in MiB (the server's maxUnsentBytes). Default 256. */
  readonly maxUnsentMib?: number | undefined
  /** Pages of other sites that may connect (browser-guard.ts), or "any". Default: none for npm start (its own page only), any for canon serve. */
  readonly allowOrigins?: ReadonlyArray<string> | "any" | undefined
}

export type Program = "npm start" | "canon serve"

const OPTIONS = `  --data DIR        LevelDB directory (env CANON_DATA, default ./data)
  --host H          address to bind (env CANON_HOST, default 127.0.0.1; 0.0.0.0 for all)
  --port P          port (env CANON_PORT, default 8787)
  --public-url URL  the URL clients use, if not http://host:port (env CANON_PUBLIC_URL)
  --allow-origin LIST
                    pages of other sites that may connect from a browser: origins such as
                    http://localhost:5173 or capacitor://localhost, comma-separated, or * for
                    any (env CANON_ALLOW_ORIGIN; npm start's default: only the hub's own
                    pages, so another site open in a browser cannot write through it; canon
                    serve's: any origin, give the app's to refuse others; clients that are
                    not browsers are not concerned)
  --no-sync         do not fsync each commit: faster, but a power loss or OS crash can lose
                    the last acknowledged commands (env CANON_SYNC=0; default: fsync every
                    commit, so acknowledged means durable; --sync is accepted and changes nothing)
  --cert FILE --key FILE   serve HTTPS and WSS with this certificate (PEM)
  --max-connections-per-address N
                    WebSocket connections one client address may hold at once; more are
                    refused with HTTP 429 (env CANON_MAX_CONNECTIONS_PER_ADDRESS, default ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS})
  --max-sockets-per-address N
                    TCP sockets one client address may hold at once, of any kind (pages,
                    WebSockets, sockets that have sent nothing yet); more are cut as they
                    connect (env CANON_MAX_SOCKETS_PER_ADDRESS, default twice
                    --max-connections-per-address: ${socketCapFor(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)}; a --trust-proxy peer is held to
                    --max-sockets only)
  --max-sockets N   TCP sockets the hub holds at once (env CANON_MAX_SOCKETS, default three
                    quarters of the open-file limit, ulimit -n, so the hub keeps descriptors
                    for its store)
  --trust-proxy LIST
                    behind a reverse proxy: the proxy addresses or CIDR ranges (comma-separated)
                    whose X-Forwarded-For names the client, or "true" for the direct peer
                    (env CANON_TRUST_PROXY, default none: the socket's address counts)
  --ipv6-prefix N   leading bits of an IPv6 address that count as one client address for the
                    limits per address: one subscriber holds a whole /64 (env CANON_IPV6_PREFIX,
                    default 64; 128 counts each address)
  --max-document-mib N
                    largest state one document may hold, in MiB: a command that would take a
                    document past it is rejected "Document … is full" (env
                    CANON_MAX_DOCUMENT_MIB, default 256)
  --max-unsent-mib N
                    bytes the hub may hold written to its WebSockets and not yet sent, all
                    of them together, in MiB: past it, sockets whose readers read nothing for
                    5 s are cut first, then those reading too slowly to empty within a minute,
                    then the newest of a client over its share, then the newest (env
                    CANON_MAX_UNSENT_MIB, default 256, at least 8)
  -h, --help        this text`

const MACHINES = `  --machines MODULE a module exporting the machines to serve (default: the demo board): .js,
                    or .ts from a checkout of Canon (npm run canon there runs TypeScript)

MODULE exports every machine made with defineMachine (or arrays of them), and may export
  authenticate(hello, info)              who a connection is: return { id: "..." } or
                                         { refuse: "a sentence" }; hello.credentials is what
                                         the client passed as \`credentials\`, info.headers
                                         and info.remoteAddress come from the upgrade request
  authorize(principal, docId, access)    may principal "read" or "write" docId: true or false
Both may be async. Example: apps/cli/examples/todo.ts in a checkout of Canon`

const HELP: Record<Program, string> = {
  "npm start": `Usage: npm start -- [options]
The demo board and its hub, on LevelDB.
${OPTIONS}`,
  "canon serve": `Usage: canon serve [options]   (from a checkout: npm run canon -- serve [options])
The hub alone, for your own machines.
${MACHINES}
${OPTIONS}`,
}

export const helpText = (program: Program = "npm start"): string => HELP[program]

export class ConfigError extends Error {}

const VALUE_FLAGS = ["data", "host", "port", "public-url", "cert", "key", "max-connections-per-address", "max-sockets-per-address", "max-sockets", "trust-proxy", "ipv6-prefix", "max-document-mib", "max-unsent-mib", "allow-origin"]
const SWITCHES = ["sync", "no-sync"]

const positiveInteger = (text: string, what: string): number => atLeast(1, text, what)

const atLeast = (least: number, text: string, what: string): number => {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < least) throw new ConfigError(`${what} must be a whole number of at least ${least}, not "${text}".`)
  return n
}

const parseSync = (text: string): boolean => {
  const t = text.trim().toLowerCase()
  if (t === "1" || t === "true" || t === "yes" || t === "on") return true
  if (t === "0" || t === "false" || t === "no" || t === "off") return false
  throw new ConfigError(`CANON_SYNC must be 1 (fsync every commit, the default) or 0 (no fsync), not "${text}".`)
}

const parseTrustProxy = (text: string, where: string): TrustProxy => {
  const t = text.trim().toLowerCase()
  if (t === "true" || t === "1") return true
  if (t === "" || t === "false" || t === "0") return false
  const list = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  try {
    proxyTrust(list)
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message.replace(/^trustProxy: /, "")}`)
  }
  return list
}

export const parseConfig = (argv: ReadonlyArray<string>, env: Record<string, string | undefined>, program: Program = "npm start"): HubConfig | "help" => {
  const usage = HELP[program]
  const known = program === "canon serve" ? [...VALUE_FLAGS, "machines"] : VALUE_FLAGS
  const flags = new Map<string, string>()
  const switches = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") return "help"
    if (!a.startsWith("--")) throw new ConfigError(`Unexpected argument "${a}".\n${usage}`)
    const eq = a.indexOf("=")
    const name = a.slice(2, eq < 0 ? undefined : eq)
    if (SWITCHES.includes(name)) {
      if (eq >= 0) throw new ConfigError(`--${name} takes no value.\n${usage}`)
      switches.add(name)
      continue
    }
    if (!known.includes(name)) throw new ConfigError(`Unknown option --${name}.\n${usage}`)
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i]
    if (value === undefined || (eq < 0 && value.startsWith("--"))) throw new ConfigError(`--${name} needs a value.\n${usage}`)
    flags.set(name, value)
  }
  if (switches.has("sync") && switches.has("no-sync")) throw new ConfigError("--sync and --no-sync contradict each other: give one (fsync is on by default).")
  const portText = flags.get("port") ?? env.CANON_PORT ?? "8787"
  const port = Number(portText)
  if (!/^\d+$/.test(portText.trim()) || port > 65535) throw new ConfigError(`Port "${portText}" is not a port number (0-65535).`)
  const cert = flags.get("cert")
  const key = flags.get("key")
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError("--cert and --key go together: give both to serve HTTPS, or neither.")
  const capFlag = flags.get("max-connections-per-address")
  const capEnv = env.CANON_MAX_CONNECTIONS_PER_ADDRESS
  const cap = capFlag !== undefined ? positiveInteger(capFlag, "--max-connections-per-address")
    : capEnv !== undefined && capEnv !== "" ? positiveInteger(capEnv, "CANON_MAX_CONNECTIONS_PER_ADDRESS")
    : DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
  const socketsFlag = flags.get("max-sockets-per-address")
  const socketsEnv = nonEmptyEnv(env.CANON_MAX_SOCKETS_PER_ADDRESS)
  const maxSocketsPerAddress = socketsFlag !== undefined ? positiveInteger(socketsFlag, "--max-sockets-per-address")
    : socketsEnv !== undefined ? positiveInteger(socketsEnv, "CANON_MAX_SOCKETS_PER_ADDRESS")
    : socketCapFor(cap)
  // Every WebSocket is a socket: under a lower socket cap the WebSocket cap and its 429 could never be met.
  if (maxSocketsPerAddress < cap) {
    throw new ConfigError(`${socketsFlag !== undefined ? "--max-sockets-per-address" : "CANON_MAX_SOCKETS_PER_ADDRESS"} (${maxSocketsPerAddress}) is below the WebSocket connections per address (${cap}): every WebSocket is also a socket, so raise it, or lower --max-connections-per-address.`)
  }
  const totalFlag = flags.get("max-sockets")
  const totalEnv = nonEmptyEnv(env.CANON_MAX_SOCKETS)
  const maxSockets = totalFlag !== undefined ? positiveInteger(totalFlag, "--max-sockets")
    : totalEnv !== undefined ? positiveInteger(totalEnv, "CANON_MAX_SOCKETS")
    : undefined
  const trustFlag = flags.get("trust-proxy")
  const trustProxy = trustFlag !== undefined ? parseTrustProxy(trustFlag, "--trust-proxy")
    : env.CANON_TRUST_PROXY !== undefined ? parseTrustProxy(env.CANON_TRUST_PROXY, "CANON_TRUST_PROXY")
    : false
  const prefixText = flags.get("ipv6-prefix") ?? nonEmptyEnv(env.CANON_IPV6_PREFIX)
  const ipv6Prefix = prefixText === undefined ? 64 : Number(prefixText.trim())
  if (prefixText !== undefined && (!/^\d{1,3}$/.test(prefixText.trim()) || ipv6Prefix < 1 || ipv6Prefix > 128)) {
    throw new ConfigError(`${flags.has("ipv6-prefix") ? "--ipv6-prefix" : "CANON_IPV6_PREFIX"} must be a whole number from 1 to 128, not "${prefixText}".`)
  }
  const mibFlag = flags.get("max-document-mib")
  const mibEnv = nonEmptyEnv(env.CANON_MAX_DOCUMENT_MIB)
  const maxDocumentMib = mibFlag !== undefined ? positiveInteger(mibFlag, "--max-document-mib")
    : mibEnv !== undefined ? positiveInteger(mibEnv, "CANON_MAX_DOCUMENT_MIB")
    : 256
  const unsentFlag = flags.get("max-unsent-mib")
  const unsentEnv = nonEmptyEnv(env.CANON_MAX_UNSENT_MIB)
  const leastUnsentMib = MIN_MAX_UNSENT_BYTES / 2 ** 20
  const maxUnsentMib = unsentFlag !== undefined ? atLeast(leastUnsentMib, unsentFlag, "--max-unsent-mib")
    : unsentEnv !== undefined ? atLeast(leastUnsentMib, unsentEnv, "CANON_MAX_UNSENT_MIB")
    : 256
  // An empty variable is unset, as for the others (an env file's `CANON_HOST=`); an empty flag is a mistake.
  // An empty host would bind every interface.
  const hostFlag = flags.get("host")
  if (hostFlag !== undefined && hostFlag.trim() === "") throw new ConfigError("--host needs an address (127.0.0.1 for this machine only, 0.0.0.0 for every interface).")
  const urlFlag = flags.get("public-url")
  if (urlFlag !== undefined && urlFlag.trim() === "") throw new ConfigError("--public-url needs the URL clients use (e.g. https://sync.example.com), or leave it out.")
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === "" ? undefined : v)
  const originText = flags.get("allow-origin") ?? nonEmpty(env.CANON_ALLOW_ORIGIN)
  // npm start serves its own page: only it may connect from a browser. canon serve serves
  // apps of other origins (a dev server, a deployed app): any, unless the operator lists them.
  let allowOrigins: ReadonlyArray<string> | "any" = program === "canon serve" ? "any" : []
  try {
    if (originText !== undefined) allowOrigins = parseOrigins(originText, flags.has("allow-origin") ? "--allow-origin" : "CANON_ALLOW_ORIGIN")
  } catch (e) {
    throw new ConfigError((e as Error).message)
  }
  const sync = switches.has("no-sync") ? false : switches.has("sync") ? true : env.CANON_SYNC !== undefined && env.CANON_SYNC !== "" ? parseSync(env.CANON_SYNC) : true
  return {
    tls: cert !== undefined && key !== undefined ? { cert, key } : undefined,
    machines: flags.get("machines") === undefined ? undefined : fromInvocationDir(flags.get("machines")!, env),
    dataDir: fromInvocationDir(flags.get("data") ?? env.CANON_DATA ?? "./data", env),
    host: hostFlag ?? nonEmpty(env.CANON_HOST) ?? "127.0.0.1",
    port,
    publicUrl: urlFlag ?? nonEmpty(env.CANON_PUBLIC_URL),
    sync,
    maxConnectionsPerAddress: cap,
    maxSocketsPerAddress,
    maxSockets,
    trustProxy,
    ipv6Prefix,
    maxDocumentMib,
    maxUnsentMib,
    allowOrigins,
  }
}

const nonEmptyEnv = (v: string | undefined): string | undefined => (v === undefined || v.trim() === "" ? undefined : v)
