// The open conversation: history (newest page first, older pages on scroll up),
// live messages, typing, read ticks, and own messages pending until acknowledged.

import { api, ApiError, qs } from "./api.js";
import { AckTimeout, NotConnected } from "./connection.js";
import { el, show, shortTime } from "./dom.js";
import { compareEntries, Timeline } from "./timeline.js";

const PAGE = 30;
const SYNC_PAGE = 200;
const MAX_PAGES = 50; // bounds every catch-up loop
const MAX_ATTEMPTS = 4; // sends of one clientId before it is shown as failed
const TYPING_REFRESH_MS = 2000;
const TYPING_IDLE_MS = 2500;
const TYPING_SHOWN_MS = 8000;

const TICKS = {
  pending: ["enviando…", "Enviando"],
  sent: ["✓", "Enviado"],
  read: ["✓✓", "Leído"],
  failed: ["no enviado", "No enviado"],
};

export class ConversationView {
  constructor({ me, chat, list, nodes }) {
    this.me = me;
    this.chat = chat; // .conn (Connection) and .connected
    this.list = list;
    this.n = nodes;
    this.conversation = null;
    this.timeline = null;
    this.nodes = new Map(); // entry -> <li>
    this.entries = new WeakMap(); // <li> -> entry
    this.hasMoreOlder = false;
    this.loadingOlder = null;
    this.lastMarkedSeq = 0;
    this.otherTyping = false;
    this.typingShownTimer = null;
    this.typingSentAt = 0;
    this.typingIdleTimer = null;
    this.generation = 0; // drops answers meant for a conversation closed since
    this.bindComposer();
    this.n.messages.addEventListener("scroll", () => {
      if (this.n.messages.scrollTop < 60) this.loadOlder();
    });
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  get id() {
    return this.conversation?.id ?? null;
  }

  /** Show a conversation (a row of the list): its newest page, then join its room. */
  async open(row) {
    this.close();
    const generation = ++this.generation;
    this.conversation = row;
    this.timeline = new Timeline(this.me.id);
    this.n.title.replaceChildren(el("bdi", {}, row.otroUsuario.nombre));
    this.n.list.replaceChildren();
    this.n.historyStatus.textContent = "Cargando…";
    this.setClosed(Boolean(row.cerrada));
    this.renderPresence();
    show(this.n.empty, false);
    show(this.n.conversation, true);
    const page = await api("GET", "/api/chat/mensajes?" + qs({ conversacionId: row.id, limit: PAGE }));
    if (generation !== this.generation) return;
    this.hasMoreOlder = page.hasMore;
    for (const { entry } of this.timeline.startAt(page.mensajes)) this.place(entry);
    this.lastMarkedSeq = Math.max(0, ...page.mensajes.filter((m) => m.leido && m.remitenteId !== this.me.id).map((m) => m.seq));
    this.renderHistoryStatus();
    this.scrollToBottom();
    await this.fillViewport(generation);
    if (this.chat.connected) await this.resume();
    else await this.poll();
    this.markRead();
  }

  close() {
    if (this.conversation && this.chat.connected) {
      this.chat.conn.request("chat:leave-room", { conversacionId: this.conversation.id }).catch(() => {});
    }
    this.generation++;
    this.conversation = null;
    this.timeline = null;
    this.nodes.clear();
    this.stopOwnTyping();
    this.setOtherTyping(false);
    show(this.n.conversation, false);
    show(this.n.empty, true);
  }

  // -- catching up -------------------------------------------------------

  /** After a (re)connect: join the room, catch up from the last seq, send what waits. */
  async resume() {
    const id = this.id;
    if (!id) return;
    try {
      const ack = await this.chat.conn.request("chat:join-room", { conversacionId: id });
      if (id !== this.id) return;
      if (ack.success) {
        this.list.setPresence(this.conversation.otroUsuario.id, ack.online);
        await this.sync();
      }
    } catch (err) {
      if (!(err instanceof NotConnected || err instanceof AckTimeout)) throw err;
    }
    this.flush();
    this.markRead();
  }

  /** chat:sync from the last seq held, page after page. */
  async sync() {
    const id = this.id;
    for (let i = 0; i < MAX_PAGES && id && id === this.id; i++) {
      const ack = await this.chat.conn.request("chat:sync", {
        conversacionId: id,
        afterSeq: this.timeline.syncedSeq,
        limit: SYNC_PAGE,
      });
      if (!ack.success || id !== this.id) return;
      this.receiveAll(ack.mensajes);
      if (!ack.hasMore) return;
    }
  }

  /** HTTP catch-up (GET ?after=): the fallback's polling. */
  async poll() {
    const id = this.id;
    for (let i = 0; i < MAX_PAGES && id && id === this.id; i++) {
      const query = qs({ conversacionId: id, after: this.timeline.syncedSeq, limit: SYNC_PAGE });
      const page = await api("GET", "/api/chat/mensajes?" + query);
      if (id !== this.id) return;
      this.receiveAll(page.mensajes);
      if (!page.hasMore) break;
    }
    this.flush();
  }

  /** HTTP: read ticks for the newest page (no live read events without the socket). */
  async refreshReadState() {
    const id = this.id;
    if (!id) return;
    const page = await api("GET", "/api/chat/mensajes?" + qs({ conversacionId: id, limit: PAGE }));
    if (id !== this.id) return;
    const read = page.mensajes.filter((m) => m.leido && m.remitenteId === this.me.id);
    if (read.length) this.applyRead(Math.max(...read.map((m) => m.seq)));
  }

  async loadOlder() {
    if (!this.hasMoreOlder || this.loadingOlder || !this.timeline?.oldestSeq) return this.loadingOlder;
    const id = this.id;
    this.n.historyStatus.textContent = "Cargando mensajes anteriores…";
    this.loadingOlder = (async () => {
      try {
        const query = qs({ conversacionId: id, before: this.timeline.oldestSeq, limit: PAGE });
        const page = await api("GET", "/api/chat/mensajes?" + query);
        if (id !== this.id) return;
        const box = this.n.messages;
        const fromBottom = box.scrollHeight - box.scrollTop;
        this.hasMoreOlder = page.hasMore;
        for (const m of page.mensajes) this.place(this.timeline.receive(m).entry);
        box.scrollTop = box.scrollHeight - fromBottom; // keep the reader's place
      } finally {
        this.loadingOlder = null;
        if (id === this.id) this.renderHistoryStatus();
      }
    })();
    return this.loadingOlder;
  }

  /** Load older pages until the box can scroll (otherwise no scroll event would ever ask). */
  async fillViewport(generation) {
    const box = this.n.messages;
    for (let i = 0; i < 5 && this.hasMoreOlder && box.scrollHeight <= box.clientHeight; i++) {
      await this.loadOlder();
      if (generation !== this.generation) return;
    }
    this.scrollToBottom();
  }

  renderHistoryStatus() {
    this.n.historyStatus.textContent = this.hasMoreOlder
      ? "Desliza hacia arriba para ver mensajes anteriores"
      : this.timeline.size ? "Inicio de la conversación" : "Todavía no hay mensajes. ¡Escribe el primero!";
  }

  // -- incoming ----------------------------------------------------------

  receiveAll(mensajes) {
    const stick = this.nearBottom();
    let fromOther = false;
    for (const m of mensajes) {
      const { entry } = this.timeline.receive(m);
      this.place(entry);
      fromOther ||= !entry.own;
    }
    if (mensajes.length) this.renderHistoryStatus();
    if (stick) this.scrollToBottom();
    if (fromOther) this.markRead();
  }

  /** chat:message-received */
  onMessage(mensaje) {
    if (mensaje.conversacionId !== this.id) return;
    if (mensaje.remitenteId !== this.me.id) this.setOtherTyping(false);
    this.receiveAll([mensaje]);
    if (this.timeline.hasGap && this.chat.connected) this.sync().catch(() => {});
  }

  /** chat:message-read */
  onRead({ conversacionId, hastaSeq, userId }) {
    if (conversacionId !== this.id) return;
    if (userId === this.me.id) this.list.setUnread(conversacionId, 0);
    else this.applyRead(hastaSeq);
  }

  applyRead(hastaSeq) {
    for (const entry of this.timeline.readUpTo(hastaSeq)) this.render(entry);
  }

  /** chat:user-typing / chat:user-stop-typing */
  onTyping(typing, { conversacionId, userId }) {
    if (conversacionId === this.id && userId !== this.me.id) this.setOtherTyping(typing);
  }

  setOtherTyping(typing) {
    clearTimeout(this.typingShownTimer);
    this.otherTyping = typing;
    // Never shown for ever if the stop is lost with a connection.
    if (typing) this.typingShownTimer = setTimeout(() => this.setOtherTyping(false), TYPING_SHOWN_MS);
    this.renderPresence();
  }

  renderPresence() {
    if (!this.conversation) return;
    const online = this.list.isOnline(this.conversation.otroUsuario.id);
    this.n.dot.className = online ? "dot online" : "dot";
    this.n.dot.setAttribute("aria-label", online ? "En línea" : "Desconectado");
    this.n.status.textContent = this.otherTyping ? "escribiendo…" : online ? "en línea" : "desconectado";
    this.n.status.classList.toggle("typing", this.otherTyping);
  }

  // -- read state --------------------------------------------------------

  /** Tell the server the other member's messages are read, while the page is in view. */
  async markRead() {
    if (!this.timeline || document.hidden) return;
    const id = this.id;
    const upTo = this.timeline.lastOtherSeq;
    if (upTo <= this.lastMarkedSeq) return;
    this.lastMarkedSeq = upTo;
    try {
      const payload = { conversacionId: id, hastaSeq: upTo };
      const answer = this.chat.connected
        ? await this.chat.conn.request("chat:mark-read", payload)
        : await api("POST", "/api/chat/mensajes/leidos", payload);
      if (answer.success) this.list.setUnread(id, 0);
      else if (id === this.id) this.lastMarkedSeq = 0;
    } catch {
      if (id === this.id) this.lastMarkedSeq = Math.min(this.lastMarkedSeq, upTo - 1);
    }
  }

  // -- sending -----------------------------------------------------------

  bindComposer() {
    const { composer, input } = this.n;
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    input.addEventListener("input", () => {
      this.autosize();
      if (input.value.trim()) this.ownTyping();
      else this.stopOwnTyping();
    });
  }

  autosize() {
    const { input } = this.n;
    input.style.height = "auto";
    const borders = input.offsetHeight - input.clientHeight;
    input.style.height = Math.min(input.scrollHeight + borders, 160) + "px";
  }

  submit() {
    const text = this.n.input.value.trim();
    if (!text || !this.timeline || this.closed) return;
    this.n.input.value = "";
    this.autosize();
    this.stopOwnTyping(false); // the server ends the typing state on send
    const entry = this.timeline.addPending(text);
    this.place(entry);
    this.renderHistoryStatus();
    this.scrollToBottom();
    this.deliver(entry);
  }

  /** Send one pending message: over the socket with an ack, or over HTTP; the same clientId each try. */
  async deliver(entry) {
    if (entry.inFlight || entry.state !== "pending" || !this.conversation) return;
    const id = this.id;
    const payload = { conversacionId: id, contenido: entry.contenido, clientId: entry.clientId };
    entry.inFlight = true;
    entry.attempts += 1;
    this.render(entry);
    let answer;
    try {
      answer = this.chat.connected
        ? await this.chat.conn.request("chat:send-message", payload)
        : await api("POST", "/api/chat/mensajes", payload);
    } catch (err) {
      answer = err instanceof ApiError && err.code !== "network" ? { success: false, ...err, message: err.message } : null;
    } finally {
      entry.inFlight = false;
    }
    if (id !== this.id || entry.state !== "pending") return; // closed, or confirmed by the broadcast
    if (answer?.success) {
      this.receiveAll([answer.mensaje]);
    } else if (answer?.code === "rate_limited") {
      setTimeout(() => this.deliver(entry), 1000 * (answer.retryAfter || 1));
    } else if (answer) {
      this.fail(entry, answer.message || "No se pudo enviar");
      if (answer.code === "forbidden") this.setClosed(true);
    } else if (entry.attempts >= MAX_ATTEMPTS) {
      this.fail(entry, "No se pudo enviar. Comprueba la conexión.");
    } else if (this.chat.connected) {
      this.deliver(entry); // ack timed out: retry now with the same clientId
    } // else: flush() sends it when the socket or HTTP answers again
  }

  fail(entry, message) {
    entry.state = "failed";
    entry.error = message;
    this.render(entry);
  }

  retry(entry) {
    if (entry.state !== "failed") return;
    entry.state = "pending";
    entry.attempts = 0;
    entry.error = null;
    this.render(entry);
    this.deliver(entry);
  }

  /** Send everything still pending (after a reconnect, or when HTTP answers again). */
  flush() {
    if (!this.timeline) return;
    for (const entry of this.timeline.pending) if (entry.state === "pending") this.deliver(entry);
  }

  setClosed(closed) {
    this.closed = closed;
    show(this.n.closedNote, closed);
    this.n.input.disabled = closed;
    this.n.send.disabled = closed;
  }

  ownTyping() {
    if (!this.id) return;
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REFRESH_MS) {
      this.typingSentAt = now;
      this.chat.conn?.notify("chat:typing", { conversacionId: this.id });
    }
    clearTimeout(this.typingIdleTimer);
    this.typingIdleTimer = setTimeout(() => this.stopOwnTyping(), TYPING_IDLE_MS);
  }

  stopOwnTyping(tell = true) {
    clearTimeout(this.typingIdleTimer);
    if (this.typingSentAt && tell && this.id) {
      this.chat.conn?.notify("chat:stop-typing", { conversacionId: this.id });
    }
    this.typingSentAt = 0;
  }

  // -- rendering ---------------------------------------------------------

  /** Put an entry's node where its seq belongs (or update it in place). */
  place(entry) {
    let node = this.nodes.get(entry);
    if (!node) {
      node = el("li");
      node.addEventListener("click", (event) => {
        if (event.target.closest("button.retry")) this.retry(entry);
      });
      this.nodes.set(entry, node);
      this.entries.set(node, entry);
    }
    this.render(entry);
    const list = this.n.list;
    let before = null;
    for (const child of list.children) {
      if (child !== node && compareEntries(this.entries.get(child), entry) > 0) {
        before = child;
        break;
      }
    }
    if (node.nextSibling !== before || node.parentNode !== list) list.insertBefore(node, before);
  }

  render(entry) {
    const node = this.nodes.get(entry);
    if (!node) return;
    node.className = `message ${entry.own ? "own" : "theirs"} ${entry.state}`;
    node.dataset.state = entry.state;
    if (entry.seq !== null) node.dataset.seq = String(entry.seq);
    if (entry.clientId) node.dataset.clientId = entry.clientId;
    if (entry.attempts) node.dataset.attempts = String(entry.attempts);
    const meta = el("span", { className: "message-meta" }, el("time", { datetime: entry.createdAt }, shortTime(entry.createdAt)));
    if (entry.own) {
      const [symbol, label] = TICKS[entry.state];
      meta.append(" ", el("span", { className: "tick", title: label, "aria-label": label }, symbol));
    }
    // Shown as sent, in an isolate of its own (dir=auto): a U+202E in it reverses only itself.
    const parts = [el("p", { className: "message-text", dir: "auto" }, entry.contenido), meta];
    if (entry.state === "failed") {
      parts.push(
        el("p", { className: "message-error", role: "alert" }, entry.error || "No enviado"),
        el("button", { type: "button", className: "retry link-button" }, "Reintentar"),
      );
    }
    node.replaceChildren(...parts);
  }

  nearBottom() {
    const box = this.n.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  scrollToBottom() {
    this.n.messages.scrollTop = this.n.messages.scrollHeight;
  }
}
