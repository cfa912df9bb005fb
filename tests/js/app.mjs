// The MiauBloom app's chat pages as a user's browser runs them, written for these
// tests from what the app does (its socket module, ChatWindow, ConversacionesList,
// ChatNotificationBadge, AuthContext and login page): the same requests, the same
// events and payloads, the same timers. Each piece records what it would show.
import { io } from "socket.io-client";

export const now = () => Date.now();

/** Resolve when check() returns something truthy (polled every 20 ms), or fail after ms. */
export function until(what, check, ms = 10000) {
  return new Promise((resolve, reject) => {
    const deadline = now() + ms;
    const poll = () => {
      let value;
      try {
        value = check();
      } catch (err) {
        reject(err);
        return;
      }
      if (value) resolve(value);
      else if (now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One person's browser on the app's host: its auth_token cookie, and the app's pages. */
export class Browser {
  constructor(base, name) {
    this.base = base;
    this.name = name;
    this.cookie = null; // the httpOnly auth_token, as the browser keeps it
    this.socket = null;
    this.errors = []; // chat:error payloads (the app shows none of them)
    this.timers = [];
  }

  /** fetch() with credentials: 'include': the cookie goes along, a Set-Cookie is kept. */
  async fetch(path, { method = "GET", body } = {}) {
    const headers = {};
    if (this.cookie) headers.Cookie = `auth_token=${this.cookie}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    for (const line of response.headers.getSetCookie()) {
      const match = /^auth_token=([^;]*)/.exec(line);
      if (match) this.cookie = match[1] || null;
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { status: response.status, ok: response.ok, data };
  }

  /** The login page: email, password and the role of the page (/auth/login/[role]). */
  async login(email, password, rol) {
    const r = await this.fetch("/api/auth/login", { method: "POST", body: { email, password, rol } });
    return r;
  }

  /** AuthContext: the session, from the cookie alone. */
  async session() {
    return this.fetch("/api/auth/user");
  }

  /** socket.ts: one socket per page, no token, the cookie of the host it connects to. */
  connect() {
    if (this.socket) return this.socket;
    this.socket = io(this.base, {
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      reconnectionAttempts: 5,
      transports: ["websocket", "polling"],
      // In a browser the cookie goes along by itself; Node's client needs it spelled out.
      extraHeaders: { Cookie: `auth_token=${this.cookie}` },
    });
    this.socket.on("chat:error", (data) => this.errors.push({ at: now(), ...data }));
    return this.socket;
  }

  every(ms, action) {
    action();
    this.timers.push(setInterval(action, ms));
  }

  close() {
    for (const timer of this.timers) clearInterval(timer);
    this.socket?.close();
  }
}

/** ConversacionesList: GET /api/chat/conversaciones on mount and every 3 s. */
export class ConversationList {
  constructor(browser) {
    this.browser = browser;
    this.rows = null;
    this.seen = []; // [time, rows as shown]
    browser.every(3000, () => this.load());
  }

  async load() {
    const r = await this.browser.fetch("/api/chat/conversaciones");
    if (!r.ok) return;
    this.rows = r.data.conversaciones || [];
    this.seen.push([now(), this.rows.map((c) => ({
      id: c.id,
      nombre: c.otroUsuario.nombre,
      otroId: c.otroUsuario.id,
      avatar: c.otroUsuario.avatar,
      ultimo: c.ultimoMensaje ? c.ultimoMensaje.contenido : null,
      noLeidos: c.mensajesNoLeidos,
    }))]);
  }

  /** The rows of the latest poll at or after `since`. */
  after(since) {
    const polls = this.seen.filter(([at]) => at >= since);
    return polls.length ? polls[polls.length - 1][1] : null;
  }
}

/** ChatNotificationBadge: GET /api/chat/no-leidos on mount and every 10 s. */
export class Badge {
  constructor(browser) {
    this.browser = browser;
    this.seen = []; // [time, total]
    browser.every(10000, async () => {
      const r = await this.browser.fetch("/api/chat/no-leidos");
      if (r.ok) this.seen.push([now(), r.data.totalMensajesNoLeidos || 0]);
    });
  }
}

/** ChatWindow: join the room, load the whole history, live updates, typing, sending. */
export class ChatWindow {
  constructor(browser, user, conversacionId) {
    this.browser = browser;
    this.user = user;
    this.conversacionId = conversacionId;
    this.mensajes = [];
    this.loaded = null; // the history as it came, when it came
    this.typing = false; // the other member's "escribiendo…"
    this.typingChanges = []; // [time, typing]
    this.typingTimeout = null;
    const socket = browser.connect();
    this.socket = socket;
    socket.emit("chat:join-room", { conversacionId, userId: user.id });
    socket.on("chat:message-received", (data) => {
      if (!this.mensajes.some((m) => m.id === data.mensaje.id)) this.mensajes.push(data.mensaje);
    });
    socket.on("chat:message-read", (data) => {
      this.mensajes = this.mensajes.map((m) => (m.id === data.messageId ? { ...m, leido: true } : m));
    });
    socket.on("chat:user-typing", (data) => this.setTyping(data, true));
    socket.on("chat:user-stop-typing", (data) => this.setTyping(data, false));
    this.ready = this.load();
  }

  setTyping(data, typing) {
    if (data.userId === this.user.id) return;
    this.typing = typing;
    this.typingChanges.push([now(), typing]);
  }

  async load() {
    const r = await this.browser.fetch(`/api/chat/mensajes?conversacionId=${this.conversacionId}`);
    if (r.ok) {
      this.mensajes = r.data.mensajes || [];
      this.loaded = { at: now(), mensajes: [...this.mensajes] }; // as first shown
    }
  }

  /** One keystroke in the input: chat:typing, and stop-typing 2 s after the last one. */
  keystroke() {
    const payload = { conversacionId: this.conversacionId, userId: this.user.id };
    if (this.socket.connected) this.socket.emit("chat:typing", payload);
    clearTimeout(this.typingTimeout);
    this.typingTimeout = setTimeout(() => {
      if (this.socket.connected) this.socket.emit("chat:stop-typing", payload);
    }, 2000);
  }

  /** The send button: over the socket with no ack, or over HTTP when it is not connected. */
  async send(contenido) {
    const ids = { conversacionId: this.conversacionId, userId: this.user.id };
    if (this.socket.connected) this.socket.emit("chat:stop-typing", ids);
    clearTimeout(this.typingTimeout);
    if (this.socket.connected) {
      this.socket.emit("chat:send-message", { ...ids, contenido, rol: this.user.rol });
      return { via: "socket" };
    }
    const r = await this.browser.fetch("/api/chat/mensajes", {
      method: "POST",
      body: { conversacionId: this.conversacionId, contenido },
    });
    if (r.ok && r.data.mensaje && !this.mensajes.some((m) => m.id === r.data.mensaje.id)) {
      this.mensajes.push(r.data.mensaje);
    }
    return { via: "http", status: r.status };
  }

  /** What the window shows of a message: its text, and ✓ or ✓✓ on one's own. */
  shown(contenido) {
    const m = this.mensajes.find((x) => x.contenido === contenido);
    if (!m) return null;
    return { ...m, tick: m.remitenteId === this.user.id ? (m.leido ? "✓✓" : "✓") : null };
  }

  close() {
    clearTimeout(this.typingTimeout);
    this.socket.emit("chat:leave-room", { conversacionId: this.conversacionId });
    for (const event of ["chat:message-received", "chat:message-read", "chat:user-typing", "chat:user-stop-typing"]) {
      this.socket.off(event);
    }
  }
}
