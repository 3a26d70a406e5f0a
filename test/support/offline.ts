/** A transport whose connections go nowhere: for clients opened offline (`autoConnect: false`) or never answered. */
import type { ClientTransport } from "../../core/index.js"

export const offlineTransport: ClientTransport = { connect: () => ({ send() {}, close() {}, bufferedAmount: 0 }) }
