/** Text of `n` characters that does not shrink (ws and gzip send it as is; seeded, so nothing can be shared). */
export const noise = (n: number, seed: number): string => {
  let x = seed
  let s = ""
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0
    s += (x >>> 8).toString(36)
  }
  return s.slice(0, n)
}
