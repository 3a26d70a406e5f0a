/** A client secret for raw hellos in tests: stable per clientId, long enough for the hub. */
export const secretFor = (clientId: string): string => `test-secret-of-${clientId}-0123456789`
