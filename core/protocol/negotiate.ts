/**
 * The handshake's decisions, as pure functions: which protocol version two peers speak, and
 * whether a client's machines match the hub's. Each refusal has a code and a sentence a
 * person can act on.
 */
import type { Machine } from "../machine.js"
import { historyOf } from "../schema/registry.js"
import { PROTOCOL_VERSIONS } from "./codec.js"
import type { MachineInfo, RefusalCode, VersionRange } from "./messages.js"
import { MACHINE_NAME_PATTERN, quoted } from "../limits.js"

/** The protocol versions this build speaks (those the codec can read and write). */
export const SUPPORTED_PROTOCOL: VersionRange = PROTOCOL_VERSIONS

/** The highest version in both ranges, or undefined. */
export const chooseVersion = (client: VersionRange, hub: VersionRange): number | undefined => {
  const v = Math.min(client.max, hub.max)
  return v >= Math.max(client.min, hub.min) ? v : undefined
}

export interface Refusal {
  readonly code: RefusalCode
  readonly message: string
  readonly machine?: string
}

/** Checks one machine a client declares against the hub's; undefined when they agree. */
export const checkMachine = (info: MachineInfo, hubMachines: ReadonlyMap<string, Machine<any, any>>): Refusal | undefined => {
  const hub = hubMachines.get(info.name)
  if (hub === undefined) {
    // The name is the client's: quoted within bounds, and echoed as a field only if it could be a machine's.
    return {
      code: "machine-unknown", ...(MACHINE_NAME_PATTERN.test(info.name) ? { machine: info.name } : {}),
      message: `This hub does not serve machine ${quoted(info.name)}; check the app is pointed at the right hub.`,
    }
  }
  // A machine with a version history serves each of its older versions (core/schema): the
  // client's commands are upcast, and what it receives is converted down for it.
  const history = historyOf(hub)
  if (info.version < hub.version && history !== undefined && history.has(info.version)) {
    if (info.fingerprint === history.at(info.version).fingerprint) return undefined
    return { code: "schema-mismatch", machine: info.name, message: `Machine "${info.name}" v${info.version} has different command schemas here than in the hub's history of it; bump the machine's version when its commands change.` }
  }
  if (info.version < hub.version) {
    return { code: "schema-too-old", machine: info.name, message: `Machine "${info.name}" is at version ${info.version} here but the hub runs ${hub.version}: update the app to sync again. Local changes are kept.` }
  }
  if (info.version > hub.version) {
    return { code: "schema-too-new", machine: info.name, message: `Machine "${info.name}" is at version ${info.version} here but the hub runs ${hub.version}: the hub needs an upgrade. Local changes are kept and sync resumes when it is.` }
  }
  if (info.fingerprint !== hub.fingerprint) {
    return { code: "schema-mismatch", machine: info.name, message: `Machine "${info.name}" v${info.version} has different command schemas here than on the hub; bump the machine's version when its commands change.` }
  }
  return undefined
}

export const describeMachine = (m: Machine<any, any>): MachineInfo => ({ name: m.name, version: m.version, fingerprint: m.fingerprint })
