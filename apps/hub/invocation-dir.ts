/**
 * Where a relative path on the command line is relative to: the directory the command was run
 * from. `npm run canon -- serve --machines ./m.ts` and `npm start -- --data ./x` run in the
 * package's root, not where the person typed them; npm says where that was in INIT_CWD.
 */
import { isAbsolute, resolve } from "node:path"

/** `path` resolved against the directory the command was run from (INIT_CWD under npm, else the working directory). */
export const fromInvocationDir = (path: string, env: Record<string, string | undefined> = process.env): string =>
  isAbsolute(path) ? path : resolve(env.INIT_CWD ?? process.cwd(), path)
