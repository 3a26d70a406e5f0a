/**
 * Bundle (a): what a browser app needs to sync one document. Written the way the README's
 * example is: effect by module path, a one-command machine (todo.ts), the browser WebSocket client.
 * Never run; bench/bundle.ts bundles it (and test/bundle-size.test.ts holds its size).
 */
import { CanonClient } from "canon"
import { wsClientTransport } from "canon/ws/browser"
import { systemRuntime } from "canon/system"
import { Todo } from "./todo.js"

const client = await CanonClient.open({ transport: wsClientTransport("wss://sync.example.com/sync"), runtime: systemRuntime, machines: [Todo] })
const doc = await client.open(Todo, "groceries")
doc.subscribe((state) => console.log(state.items))
await doc.submit("add", { id: "milk", title: "Milk" })
