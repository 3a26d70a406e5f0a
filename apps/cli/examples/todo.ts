/**
 * An example module for `canon serve --machines apps/cli/examples/todo.ts`: one machine (a
 * todo list) and the two optional auth hooks the hub calls.
 *
 * - `authenticate(hello, info)`: who a connection is. Here a bearer token the client passes
 *   as `credentials` (`CanonClient.open({ ..., credentials: token })`), looked up in
 *   TODO_TOKENS ("token=user,token=user"; a real app asks its session store). It may also
 *   read `info.headers` (a cookie) or `info.remoteAddress`. Return `{ id }` or `{ refuse }`.
 * - `authorize(principal, docId, access)`: what they may do. Here everyone reads every list;
 *   a user writes the lists named "<user>/..." and the list "shared".
 *
 * In your own module import from "canon" instead of the relative paths.
 */
import * as Schema from "effect/Schema"
import { defineMachine, type Authenticate, type Authorize } from "../../../core/index.js"

export const Todo = defineMachine({
  name: "todo",
  version: 1,
  initial: () => ({ items: {} as Record<string, { title: string; done: boolean; by: string }> }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (state, { id, title }, ctx) => {
        if (state.items[id]) ctx.reject(`There is already an item ${id}.`)
        state.items[id] = { title, done: false, by: ctx.clientId }
      },
    },
    toggle: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        item.done = !item.done
      },
    },
  },
})

/** token -> user, from TODO_TOKENS. */
const tokens = (): Map<string, string> =>
  new Map((process.env.TODO_TOKENS ?? "").split(",").map((pair) => pair.trim().split("=") as [string, string]).filter(([t, u]) => t && u))

export const authenticate: Authenticate = (hello) => {
  const user = hello.credentials === undefined ? undefined : tokens().get(hello.credentials)
  return user !== undefined ? { id: user } : { refuse: "Unknown or missing token: pass your token as the client's credentials." }
}

export const authorize: Authorize = (principal, docId, access) =>
  access === "read" || docId === "shared" || docId.startsWith(`${principal.id}/`)
