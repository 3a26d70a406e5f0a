export type * from "./storage.js"
export type * from "./transport.js"
export type * from "./runtime.js"
export { newClientId } from "./runtime.js"
