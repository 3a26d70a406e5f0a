/** The CanonError a promise rejects with (the test fails if it resolves or rejects otherwise). */
import { CanonError } from "../../core/index.js"

export const canonErrorOf = async (p: Promise<unknown>): Promise<CanonError> => {
  let error: unknown
  try {
    await p
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(CanonError)
  return error as CanonError
}
