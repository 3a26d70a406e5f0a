import type { HubLimits } from "../core/index.js"

/**
 * The bench hub's per-connection rate limits are lifted: the defaults (1,000 messages/s,
 * 20,000 commands/s per connection) are abuse limits that a throughput figure would only
 * measure. Everything else (frame size, commands per submit, backpressure) keeps its default.
 */
export const BENCH_LIMITS: Partial<HubLimits> = {
  messagesPerSecond: 1e9, messageBurst: 1e9, commandsPerSecond: 1e9, commandBurst: 1e9,
}
