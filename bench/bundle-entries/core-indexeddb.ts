/**
 * Bundle (b'): bundle (a) plus the replica kept in IndexedDB through `canon/indexeddb` (the
 * browser's API, no dependency), so edits survive a reload and go out when the network
 * returns. Bundle (b) does the same through `canon/level` (core-level.ts).
 * Never run; bench/bundle.ts bundles it.
 */
import { CanonClient } from "canon"
import { IndexedDbStorage } from "canon/indexeddb"
import { wsClientTransport } from "canon/ws/browser"
import { systemRuntime } from "canon/system"
import { Todo } from "./todo.js"

const storage = await IndexedDbStorage.open("todo")
const client = await CanonClient.open({ transport: wsClientTransport("wss://sync.example.com/sync"), runtime: systemRuntime, machines: [Todo], storage })
const doc = await client.open(Todo, "groceries")
doc.subscribe((state) => console.log(state.items))
await doc.submit("add", { id: "milk", title: "Milk" })
