/**
 * What the CRDT updates of a submit will cost the hub, read where the submit enters.
 *
 * A few bytes of CRDT update can stand for seconds of work: an Automerge change deleting
 * 100,000 characters is 153 bytes and took 2.8 s to validate and merge. Each engine's `weigh`
 * reads the work from the bytes without decoding (core/crdt/engine.ts); the hub charges it to
 * the client's work bucket (hub.ts, `workPerSecond`), which its other commands pay from too, measured.
 *
 * It must be read as the frame arrives, before the connection is read again: a hold that
 * starts once the submit reaches its document comes after the frames sent behind it were read.
 * The estimate can miss: Yjs places an item by scanning its neighbours in the document, which
 * the bytes do not show (100 items of 803 bytes took 2.4 s after 60,000 siblings). What a merge
 * costs past its estimate, measured on the runtime's clock as the document merges it, is
 * charged afterwards (`excess`; hub.ts): it holds the client's next merge.
 *
 * A submit names its document, not its machine, so a merge command is weighed by every engine
 * the hub's machines declare under that command's name, and the heaviest reading counts.
 * (`evolve` carries a machine's fields unchanged into every version: one engine per field name.)
 */
import type { CrdtEngine, CrdtFieldDecl } from "../crdt/engine.js"
import { crdtCommandName } from "../crdt/fields.js"
import type { Machine } from "../machine.js"
import type { Submit } from "../protocol/messages.js"
import { argsCodecOf } from "../protocol/args-codec.js"

export class CrdtWorkGauge {
  /** Engines by merge command name (`$crdt.<field>`). */
  private readonly engines = new Map<string, CrdtEngine[]>()
  /** What each merge command weighed as it entered, for `excess` once it is merged. */
  private readonly estimates = new WeakMap<object, number>()

  constructor(machines: Iterable<Machine<any>>) {
    for (const m of machines) {
      for (const [field, decl] of Object.entries(m.crdt ?? {}) as Array<[string, CrdtFieldDecl]>) {
        const name = crdtCommandName(field)
        const list = this.engines.get(name) ?? []
        if (!list.includes(decl.engine)) list.push(decl.engine)
        this.engines.set(name, list)
      }
    }
  }

  /** Whether `msg` carries a merge command. */
  carriesMerges(msg: Submit): boolean {
    return this.engines.size > 0 && msg.commands.some((c) => this.engines.has(c.name))
  }

  /** Estimated µs of hub work in each command of `msg` (0 for a command that is not a merge), or undefined when it carries no merge. */
  weigh(msg: Submit): number[] | undefined {
    if (this.engines.size === 0) return undefined
    let weights: number[] | undefined
    msg.commands.forEach((cmd, i) => {
      const engines = this.engines.get(cmd.name)
      if (engines === undefined) return
      let most = 0
      for (const engine of engines) most = Math.max(most, engine.weigh(msg.compact === true ? expand(engine, cmd.args) : cmd.args))
      ;(weights ??= new Array<number>(msg.commands.length).fill(0))[i] = most
      this.estimates.set(cmd, most)
    })
    return weights
  }

  /**
   * What a merge cost past its estimate, in µs (0 when the estimate covered it), at most
   * `cap`: a clock that jumped, or a pause of the whole process, is not one client's work.
   */
  excess(command: object, micros: number, cap: number): number {
    return Math.min(cap, Math.max(0, micros - (this.estimates.get(command) ?? 0)))
  }
}

/** Protocol 2's compact arguments of a merge, by the engine's schema (unreadable: nothing to weigh; the document refuses them). */
const expand = (engine: CrdtEngine, args: unknown): unknown => {
  if (!(args instanceof Uint8Array)) return undefined
  try {
    return argsCodecOf(engine.args.ast).decode(args)
  } catch {
    return undefined
  }
}
