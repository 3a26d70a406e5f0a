/**
 * Stands in for the `buffer` polyfill in bench/bundle-culprits.ts: level-transcoder (under
 * level's browser build) requires `buffer` only for its `buffer` encoding and for
 * `Buffer.isBuffer` checks; Canon reads and writes Uint8Arrays (`view`), so no Buffer ever
 * reaches it in a browser.
 */
export const Buffer = { isBuffer: (_: unknown): boolean => false }
