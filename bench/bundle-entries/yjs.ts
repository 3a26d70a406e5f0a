/**
 * Comparison bundle: a Yjs document synced over y-websocket's WebsocketProvider (with its
 * awareness, as the provider always creates one). Never run; bench/bundle.ts bundles it.
 */
import * as Y from "yjs"
import { WebsocketProvider } from "y-websocket"

const doc = new Y.Doc()
const provider = new WebsocketProvider("wss://sync.example.com", "groceries", doc)
const items = doc.getMap<{ title: string; done: boolean }>("items")
items.observe(() => console.log(items.toJSON()))
items.set("milk", { title: "Milk", done: false })
provider.on("status", ({ status }) => console.log(status))
