/**
 * Watches the realm's shared objects (Object.prototype and friends): a command must never
 * reach them, whatever keys it is given ("__proto__", "constructor", "toString"...). The
 * simulator runs every peer in one process, so a command that writes through a prototype
 * on the hub would also change what every replica sees.
 */

const watched = (): ReadonlyArray<readonly [string, object]> => [
  ["Object.prototype", Object.prototype],
  ["Array.prototype", Array.prototype],
  ["Function.prototype", Function.prototype],
  ["String.prototype", String.prototype],
  ["Number.prototype", Number.prototype],
  ["Boolean.prototype", Boolean.prototype],
  ["Uint8Array.prototype", Uint8Array.prototype],
  ["Map.prototype", Map.prototype],
  ["Date.prototype", Date.prototype],
  ["Promise.prototype", Promise.prototype],
  ["Object", Object],
  ["Array", Array],
  ["Function", Function],
  ["Object.prototype.toString", Object.prototype.toString],
  ["Object.prototype.hasOwnProperty", Object.prototype.hasOwnProperty],
  ["Object.prototype.valueOf", Object.prototype.valueOf],
  ["Object.prototype.isPrototypeOf", Object.prototype.isPrototypeOf],
  ["Object.prototype.propertyIsEnumerable", Object.prototype.propertyIsEnumerable],
  ["Object.prototype.toLocaleString", Object.prototype.toLocaleString],
  ["JSON", JSON],
  ["Math", Math],
]

interface Shape {
  readonly name: string
  readonly target: object
  readonly proto: object | null
  readonly extensible: boolean
  readonly props: Map<PropertyKey, PropertyDescriptor>
}

export type GlobalsSnapshot = ReadonlyArray<Shape>

const shapeOf = (name: string, target: object): Shape => {
  const props = new Map<PropertyKey, PropertyDescriptor>()
  for (const k of Reflect.ownKeys(target)) props.set(k, Reflect.getOwnPropertyDescriptor(target, k)!)
  return { name, target, proto: Reflect.getPrototypeOf(target), extensible: Reflect.isExtensible(target), props }
}

export const snapshotGlobals = (): GlobalsSnapshot => watched().map(([n, t]) => shapeOf(n, t))

const same = (a: PropertyDescriptor, b: PropertyDescriptor): boolean =>
  Object.is(a.value, b.value) && a.get === b.get && a.set === b.set && a.writable === b.writable && a.enumerable === b.enumerable && a.configurable === b.configurable

/** What changed since the snapshot, one sentence per change (empty: untouched). */
export const diffGlobals = (before: GlobalsSnapshot): string[] => {
  const out: string[] = []
  for (const s of before) {
    const now = shapeOf(s.name, s.target)
    if (now.proto !== s.proto) out.push(`${s.name}: its prototype was replaced`)
    if (now.extensible !== s.extensible) out.push(`${s.name}: extensibility changed`)
    for (const [k, d] of now.props) {
      const was = s.props.get(k)
      if (was === undefined) out.push(`${s.name}: property ${String(k)} was added`)
      else if (!same(was, d)) out.push(`${s.name}: property ${String(k)} was changed`)
    }
    for (const k of s.props.keys()) if (!now.props.has(k)) out.push(`${s.name}: property ${String(k)} was deleted`)
  }
  return out
}

/** Puts everything back as it was (so one polluted run does not poison the next). */
export const restoreGlobals = (before: GlobalsSnapshot): void => {
  for (const s of before) {
    try {
      if (Reflect.getPrototypeOf(s.target) !== s.proto) Reflect.setPrototypeOf(s.target, s.proto)
      for (const k of Reflect.ownKeys(s.target)) if (!s.props.has(k)) Reflect.deleteProperty(s.target, k)
      for (const [k, d] of s.props) {
        const now = Reflect.getOwnPropertyDescriptor(s.target, k)
        if (now === undefined || !same(now, d)) Reflect.defineProperty(s.target, k, d)
      }
    } catch {
      // A frozen or non-configurable change cannot be undone: the failure is reported anyway.
    }
  }
}
