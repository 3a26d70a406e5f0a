/**
 * automerge-repo's WebSocket protocol (automerge-repo-network-websocket 2.x, protocol "1"):
 * every frame is one CBOR map, encoded as automerge-repo does (cbor-x with
 * `tagUint8Array: false, useRecords: false`, so bytes are plain CBOR byte strings).
 *
 *   client -> hub: { type: "join", senderId, peerMetadata, supportedProtocolVersions: ["1"] }
 *   hub -> client: { type: "peer", senderId, peerMetadata, selectedProtocolVersion: "1", targetId }
 *                  or { type: "error", senderId, message, targetId } and close
 *   either way:    { type: "request" | "sync", senderId, targetId, documentId, data: <Automerge sync message> }
 *                  { type: "ephemeral", senderId, targetId, documentId, count, sessionId, data: <CBOR> }
 *                  { type: "doc-unavailable", senderId, targetId, documentId }
 */
import { Encoder, decode } from "cbor-x"

const encoder = new Encoder({ tagUint8Array: false, useRecords: false })

export const PROTOCOL_VERSION = "1"

export type RepoMessage =
  | { readonly type: "join"; readonly senderId: string; readonly peerMetadata?: unknown; readonly supportedProtocolVersions?: ReadonlyArray<string> }
  | { readonly type: "peer"; readonly senderId: string; readonly peerMetadata: unknown; readonly selectedProtocolVersion: string; readonly targetId: string }
  | { readonly type: "error"; readonly senderId: string; readonly message: string; readonly targetId: string }
  | { readonly type: "request" | "sync"; readonly senderId: string; readonly targetId: string; readonly documentId: string; readonly data: Uint8Array }
  | { readonly type: "ephemeral"; readonly senderId: string; readonly targetId: string; readonly documentId: string; readonly count: number; readonly sessionId: string; readonly data: Uint8Array }
  | { readonly type: "doc-unavailable"; readonly senderId: string; readonly targetId: string; readonly documentId: string }
  | { readonly type: "other"; readonly senderId: string; readonly name: string }

export const encodeRepoMessage = (m: Record<string, unknown>): Uint8Array => encoder.encode(m)

const TARGET_KEY = encoder.encode("targetId").slice()

/** A CBOR map's header: its entry count and length in bytes (definite lengths under 2^16 only). */
const mapHeader = (bytes: Uint8Array): { readonly entries: number; readonly length: number } | undefined => {
  const b = bytes[0]
  if (b === undefined || b < 0xa0 || b > 0xb9) return undefined
  if (b < 0xb8) return { entries: b - 0xa0, length: 1 }
  if (b === 0xb8) return bytes.length < 2 ? undefined : { entries: bytes[1]!, length: 2 }
  return bytes.length < 3 ? undefined : { entries: (bytes[1]! << 8) | bytes[2]!, length: 3 }
}

/**
 * A message encoded once (without `targetId`) for many receivers, addressed to one: its frame
 * is `head` (a map header counting one entry more, then `targetId`), a few bytes of this
 * receiver's own, followed by `body`, the entries of the encoded message (a subarray: every
 * receiver's frame shares it). Undefined when `encoded` is not such a map.
 */
export const addressTo = (encoded: Uint8Array, targetId: string): { readonly head: Uint8Array; readonly body: Uint8Array } | undefined => {
  const header = mapHeader(encoded)
  if (header === undefined || header.entries >= 0xffff) return undefined
  const n = header.entries + 1
  const count = n < 24 ? [0xa0 + n] : n < 256 ? [0xb8, n] : [0xb9, n >> 8, n & 0xff]
  const target = encoder.encode(targetId)
  const head = new Uint8Array(count.length + TARGET_KEY.length + target.length)
  head.set(count)
  head.set(TARGET_KEY, count.length)
  head.set(target, count.length + TARGET_KEY.length)
  return { head, body: encoded.subarray(header.length) }
}

const str = (v: unknown, max = 256): v is string => typeof v === "string" && v.length > 0 && v.length <= max
const bytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/** Decodes and checks one frame; undefined when it is not a well-formed message. */
export const decodeRepoMessage = (frame: Uint8Array): RepoMessage | undefined => {
  let m: unknown
  try {
    m = decode(frame)
  } catch {
    return undefined
  }
  if (typeof m !== "object" || m === null) return undefined
  const o = m as Record<string, unknown>
  if (!str(o.type, 64) || !str(o.senderId)) return undefined
  const senderId = o.senderId
  switch (o.type) {
    case "join": {
      const v = o.supportedProtocolVersions
      if (v !== undefined && !(Array.isArray(v) && v.length <= 16 && v.every((x) => typeof x === "string"))) return undefined
      return { type: "join", senderId, peerMetadata: o.peerMetadata, ...(v !== undefined ? { supportedProtocolVersions: v as string[] } : {}) }
    }
    case "request":
    case "sync":
      if (!str(o.documentId, 128) || !bytes(o.data)) return undefined
      return { type: o.type, senderId, targetId: String(o.targetId ?? ""), documentId: o.documentId, data: o.data }
    case "ephemeral":
      if (!str(o.documentId, 128) || !bytes(o.data) || typeof o.count !== "number" || !Number.isSafeInteger(o.count) || !str(o.sessionId)) return undefined
      return { type: "ephemeral", senderId, targetId: String(o.targetId ?? ""), documentId: o.documentId, count: o.count, sessionId: o.sessionId, data: o.data }
    case "doc-unavailable":
      if (!str(o.documentId, 128)) return undefined
      return { type: "doc-unavailable", senderId, targetId: String(o.targetId ?? ""), documentId: o.documentId }
    case "peer":
      return { type: "peer", senderId, peerMetadata: o.peerMetadata, selectedProtocolVersion: String(o.selectedProtocolVersion ?? ""), targetId: String(o.targetId ?? "") }
    case "error":
      return { type: "error", senderId, message: String(o.message ?? ""), targetId: String(o.targetId ?? "") }
    default:
      return { type: "other", senderId, name: o.type }
  }
}
