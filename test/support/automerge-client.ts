/**
 * automerge-repo's stock client adapter, made to stay stopped once its Repo shuts down. The
 * stock adapter reconnects on a timer set when its socket closes, which `disconnect()` cannot
 * cancel: a Repo shut down in that window connects again afterwards and then retries on an
 * interval for ever (the hub it wanted is gone), keeping jest's process alive.
 */
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

export class StoppableClientAdapter extends WebSocketClientAdapter {
  #stopped = false

  override connect(...args: Parameters<WebSocketClientAdapter["connect"]>): void {
    if (!this.#stopped) super.connect(...args)
  }

  override disconnect(): void {
    this.#stopped = true
    super.disconnect()
  }
}
