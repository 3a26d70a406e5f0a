/**
 * Authentication and authorization hooks of the hub. Canon does not know users: the app
 * says who a connection is (`authenticate`, from the hello's credentials and the transport's
 * request info) and what they may do (`authorize`, per document, read or write).
 *
 * A clientId belongs to the first principal that uses it; another principal presenting the
 * same clientId is refused, so nobody can submit (or read outcomes) as someone else's client.
 *
 * @example
 * ```ts
 * new Hub({
 *   ...,
 *   authenticate: async (hello) => {
 *     const user = await sessions.verify(hello.credentials)
 *     return user ? { id: user.id } : { refuse: "Your session expired; sign in again." }
 *   },
 *   authorize: (principal, docId, access) => access === "read" || docId.startsWith(`${principal.id}/`),
 * })
 * ```
 */
import type { ConnectionInfo } from "../ports/transport.js"
import type { Hello } from "../protocol/messages.js"

/** Who a connection is. `id` is what clientIds are bound to. */
export interface Principal {
  readonly id: string
  readonly [key: string]: unknown
}

export type AuthenticateResult = Principal | { readonly refuse: string }

export type Authenticate = (hello: Hello, info: ConnectionInfo | undefined) => AuthenticateResult | Promise<AuthenticateResult>
export type Authorize = (principal: Principal, docId: string, access: "read" | "write") => boolean | Promise<boolean>

/** Without an authenticate hook every connection is this principal. */
export const ANONYMOUS: Principal = { id: "anonymous" }
