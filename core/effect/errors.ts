/** How foreign failures become the typed errors of the Effect API. */
import { CanonError, type CanonErrorCode } from "../errors.js"

/**
 * A CanonError as is; anything else (a storage adapter's own error, say) wrapped with
 * `code` and the original message.
 */
export const toCanonError = (error: unknown, code: CanonErrorCode): CanonError =>
  error instanceof CanonError ? error : new CanonError({ code, message: error instanceof Error ? error.message : String(error) })
