#!/usr/bin/env node
// The `canon` command. In a checkout (main.ts beside this file) it runs the TypeScript CLI
// through tsx, no build step; in the installed package it runs the built JavaScript.
import { existsSync } from "node:fs"

if (existsSync(new URL("./main.ts", import.meta.url))) {
  const { register } = await import("tsx/esm/api")
  register()
  await import("./main.ts")
} else {
  await import("../../dist/apps/cli/main.js")
}
