/**
 * Comparison bundle: an Automerge document in an automerge-repo Repo synced over the
 * WebSocket client adapter. The `slim` entry with the WebAssembly fetched beside the script
 * is Automerge's documented way for bundlers without WebAssembly ESM integration (esbuild);
 * bench/bundle.ts counts the .wasm file in the total. Never run.
 */
import { Repo, initializeWasm } from "@automerge/automerge-repo/slim"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

await initializeWasm("/automerge.wasm") // fetched and compiled by wasm-bindgen
const repo = new Repo({ network: [new BrowserWebSocketClientAdapter("wss://sync.example.com")] })
const handle = repo.create<{ items: Record<string, { title: string; done: boolean }> }>({ items: {} })
handle.on("change", ({ doc }) => console.log(doc.items))
handle.change((d) => {
  d.items["milk"] = { title: "Milk", done: false }
})
