/**
 * Text for a terminal. What `inspect` and `compact` print quotes what clients chose (a docId
 * is any well-formed string, control characters included) and what stores hold: printed raw,
 * an escape sequence would run in the operator's terminal (erase a line and print a fake
 * verdict, set the title, write the clipboard with OSC 52) and a newline could forge a line.
 * Every report line passes here on its way out.
 */

/** C0 controls but tab, DEL, C1 controls, and the invisible marks that reorder or hide text (bidi, zero-width, line and paragraph separators, BOM). */
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g

const escaped = (c: string): string => {
  const code = c.charCodeAt(0)
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

/**
 * One line as a terminal shows it without acting on it: each character above shown as its
 * escape (`\x1b`, `\u202e`), the rest as it is.
 *
 * @example
 * shownLine("board\x1b]0;pwned\x07") // 'board\\x1b]0;pwned\\x07'
 */
export const shownLine = (line: string): string => line.replace(UNSAFE, escaped)

/** A report's sink: lines, and progress with an optional label. */
interface ReportOutput {
  log(line: string): void
  progress(done: number, total: number, label?: string): void
}

/** `out` with every line and progress label passed through shownLine: what a command's report is given. */
export const shownOutput = <O extends ReportOutput>(out: O): O => ({
  ...out,
  log: (line: string) => out.log(shownLine(line)),
  progress: (done: number, total: number, label?: string) => out.progress(done, total, label === undefined ? undefined : shownLine(label)),
})
