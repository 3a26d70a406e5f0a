/**
 * Progress of long CLI work, on stderr (stdout keeps the report): on a terminal a bar
 * redrawn in place; elsewhere (a pipe, a log file) a plain line at each quarter, so a log
 * stays readable. Work smaller than `minTotal` shows nothing.
 */
export interface ProgressStream {
  readonly isTTY?: boolean
  write(text: string): unknown
}

export type Progress = (done: number, total: number, label?: string) => void

const fmt = (n: number): string => n.toLocaleString("en-US")

export const progressReporter = (stream: ProgressStream, minTotal = 10_000): Progress => {
  let shown = -1
  let shownFor = ""
  return (done, total, label = "") => {
    if (total < minTotal || total <= 0) return
    const key = `${label}/${total}`
    if (key !== shownFor) {
      shownFor = key
      shown = -1
    }
    const fraction = Math.min(1, done / total)
    const prefix = label === "" ? "" : `${label} `
    if (stream.isTTY === true) {
      const width = 30
      const filled = Math.round(fraction * width)
      stream.write(`\r${prefix}[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${Math.floor(fraction * 100)}% ${fmt(done)}/${fmt(total)}`)
      if (done >= total) stream.write("\n")
      return
    }
    const quarter = Math.floor(fraction * 4)
    if (quarter <= shown) return
    shown = quarter
    stream.write(`${prefix}${Math.floor(fraction * 100)}% (${fmt(done)}/${fmt(total)})\n`)
  }
}
