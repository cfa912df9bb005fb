// The Socket.IO connection: events in, acknowledged emits out.

const SERVER_EVENTS = [
  "chat:message-received",
  "chat:conversation-updated",
  "chat:message-read",
  "chat:message-edited",
  "chat:message-deleted",
  "chat:user-typing",
  "chat:user-stop-typing",
  "chat:presence",
  "chat:user-joined",
  "chat:user-left",
  "chat:error",
];

/** An emit whose ack did not come back in time (the caller may retry). */
export class AckTimeout extends Error {}

/** Not connected right now (the caller waits for the next connect, or uses HTTP). */
export class NotConnected extends Error {}

export class Connection {
  /**
   * handlers: onConnect(), onDisconnect(reason), onConnectError(err, refused),
   * onEvent(name, payload).
   */
  constructor(token, handlers) {
    this.handlers = handlers;
    // The httpOnly cookie goes along too; the token from the login is sent explicitly.
    this.socket = window.io({
      auth: token ? { token } : {},
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      timeout: 5000,
    });
    this.socket.on("connect", () => handlers.onConnect());
    this.socket.on("disconnect", (reason) => handlers.onDisconnect(reason));
    this.socket.on("connect_error", (err) => {
      // A refusal by the server (no valid token) is not retried by the client itself.
      handlers.onConnectError(err, !this.socket.active || err?.data?.code === "unauthenticated");
    });
    for (const name of SERVER_EVENTS) {
      this.socket.on(name, (payload) => handlers.onEvent(name, payload || {}));
    }
  }

  get connected() {
    return this.socket.connected;
  }

  /** Emit and wait for the ack (a {success, ...} object). */
  request(event, payload, timeoutMs = 8000) {
    if (!this.socket.connected) return Promise.reject(new NotConnected(event));
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
        if (err) reject(new AckTimeout(event));
        else resolve(ack || { success: false, code: "internal", message: "Sin respuesta" });
      });
    });
  }

  /** Emit with no ack wanted, dropped when disconnected (typing). */
  notify(event, payload) {
    if (this.socket.connected) this.socket.volatile.emit(event, payload);
  }

  /** Try again now (after a refusal, or when the page comes back). */
  retry() {
    if (!this.socket.connected) this.socket.connect();
  }

  close() {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
