/** LevelDB storage (the `level` package: classic-level on Node, IndexedDB in browsers). See storage.ts for durability. */
export { LevelStorage, type LevelOpenOptions, type LevelStorageOptions } from "./storage.js"
