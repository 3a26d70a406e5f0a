/** The real runtime (clock, timers, crypto randomness) for Node and browsers. */
export { systemRuntime } from "./runtime.js"
