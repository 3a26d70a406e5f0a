/** In-memory adapters: storage, a fault-injecting network, and a virtual seeded runtime. */
export { MemoryStorage, compareBytes, type MemoryStorageOptions } from "./storage.js"
export { MemoryNetwork, type MemoryNetworkOptions, type RefusedFrame } from "./network.js"
export { VirtualRuntime } from "./virtual-runtime.js"
