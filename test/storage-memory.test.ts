/** The shared Storage conformance suite over MemoryStorage. */
import { MemoryStorage } from "../adapters/memory/index.js"
import { storageConformance } from "./storage-conformance.js"

storageConformance("memory", () => ({
  open: async () => new MemoryStorage(),
  persistent: false,
  dispose: async () => {},
}))
