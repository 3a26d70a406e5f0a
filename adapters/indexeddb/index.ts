/** IndexedDB storage for browsers, with no dependency; reads and writes what `canon/level` stores in a browser. See storage.ts for layout and durability. */
export { IndexedDbStorage, type IndexedDbOpenOptions } from "./storage.js"
