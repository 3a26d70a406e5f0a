/** Jest runs TypeScript through SWC as native ESM (the package is "type": "module"). */
export default {
  // Node's, plus a report of the timers, sockets and processes a file leaves open (they keep
  // the in-band run from exiting): test/support/leak-environment.ts.
  testEnvironment: "<rootDir>/test/support/leak-environment.ts",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  extensionsToTreatAsEsm: [".ts"],
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "es6" } }]
  },
  testTimeout: 60000
}
