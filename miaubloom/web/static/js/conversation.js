// The open conversation: history (newest page first, older pages on scroll up),
// live messages, typing, read ticks, own messages pending until acknowledged,
// and (v1.2) editing and deleting own messages, their versions, and jumping to
// a search result (its page is loaded where it belongs; a gap marker fills in
// what lies between it and the pages already shown).

import { api, ApiError, qs } from "./api.js";
import { AckTimeout, NotConnected } from "./connection.js";
import { el, show } from "./dom.js";
import { messageParts } from "./message.js";
import { compareEntries, Timeline } from "./timeline.js";

const PAGE = 30;
const SYNC_PAGE = 200;
const MAX_PAGES = 50; // bounds every catch-up loop
const MAX_ATTEMPTS = 4; // sends of one clientId before it is shown as failed
const TYPING_REFRESH_MS = 2000;
const TYPING_IDLE_MS = 2500;
const TYPING_SHOWN_MS = 8000;
const HIGHLIGHT_MS = 6000;

export class ConversationView {
  constructor({ me, chat, list, nodes, search, downloads }) {
    this.me = me;
    this.chat = chat; // .conn (Connection) and .connected
    this.list = list;
    this.n = nodes;
    this.search = search; // SearchPanel, reset with each conversation
    this.downloads = downloads; // DownloadMenu, pointed at each conversation
    this.fillingGap = null;
    this.highlighted = null;
    this.gapObserver = new IntersectionObserver((seen) => {
      for (const { isIntersecting, target } of seen) if (isIntersecting) this.fillGap(target);
    }, { root: this.n.messages });
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
    this.search?.reset(row.id);
    this.downloads?.reset(row.id);
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
    this.search?.reset(null);
    this.downloads?.reset(null);
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
    // No live edit or delete events without the socket: take them from the page.
    for (const m of page.mensajes) if (this.timeline.bySeq.has(m.seq)) this.render(this.timeline.receive(m).entry);
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

  /** chat:message-edited: a shown message has a new version. */
  onEdited(mensaje) {
    if (mensaje.conversacionId !== this.id || !this.timeline.bySeq.has(mensaje.seq)) return;
    const { entry } = this.timeline.receive(mensaje);
    this.render(entry);
    if (entry.versions) this.loadVersions(entry);
  }

  /** chat:message-deleted: a shown message becomes "Mensaje eliminado" in place. */
  onDeleted({ conversacionId, messageId, seq }) {
    if (conversacionId !== this.id) return;
    const entry = this.timeline.bySeq.get(seq);
    if (!entry || entry.id !== messageId) return;
    Object.assign(entry, { eliminado: true, contenido: "", versions: null, editing: false, confirmingDelete: false });
    this.render(entry);
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

  // -- editing and deleting own messages, versions (v1.2) ----------------

  /** A click on one of a message's buttons (data-action, or retry). */
  act(entry, button) {
    if (button.classList.contains("retry")) return this.retry(entry);
    const handlers = {
      edit: () => Object.assign(entry, { editing: true, draft: entry.contenido, confirmingDelete: false }),
      "edit-cancel": () => Object.assign(entry, { editing: false, draft: null }),
      "edit-save": () => this.saveEdit(entry),
      delete: () => Object.assign(entry, { confirmingDelete: true }),
      "delete-cancel": () => Object.assign(entry, { confirmingDelete: false }),
      "delete-confirm": () => this.confirmDelete(entry),
      versions: () => (entry.versions ? Object.assign(entry, { versions: null }) : this.loadVersions(entry)),
    };
    const handler = handlers[button.dataset.action];
    if (!handler) return;
    entry.actionError = null;
    handler();
    this.render(entry);
    if (button.dataset.action === "edit") this.nodes.get(entry)?.querySelector(".edit-input")?.focus();
  }

  /** Over the socket with an ack, or over HTTP; the answer as {success, ...} either way. */
  async modify(event, payload, method, path, body) {
    try {
      return this.chat.connected ? await this.chat.conn.request(event, payload) : await api(method, path, body);
    } catch (err) {
      if (err instanceof ApiError && err.code !== "network") return { success: false, code: err.code, message: err.message };
      return { success: false, code: "network", message: "No se pudo conectar. Inténtalo de nuevo." };
    }
  }

  async saveEdit(entry) {
    const text = (entry.draft ?? "").trim();
    if (!text) {
      entry.actionError = "El mensaje no puede quedar vacío.";
      return;
    }
    if (text === entry.contenido) {
      Object.assign(entry, { editing: false, draft: null });
      return;
    }
    const id = this.id;
    const body = { contenido: text, version: entry.version };
    const answer = await this.modify("chat:edit-message", { messageId: entry.id, ...body }, "PATCH", `/api/chat/mensajes/${entry.id}`, body);
    if (id !== this.id) return;
    if (answer.success) {
      Object.assign(entry, { editing: false, draft: null });
      this.timeline.receive(answer.mensaje);
      if (entry.versions) this.loadVersions(entry);
    } else {
      entry.actionError =
        answer.code === "conflict" ? "El mensaje cambió mientras lo editabas: revisa el texto y vuelve a guardar." : answer.message;
      if (answer.code === "forbidden") entry.editing = false;
      if (answer.code === "conflict") this.reload(entry);
    }
    this.render(entry);
  }

  async confirmDelete(entry) {
    const id = this.id;
    const answer = await this.modify("chat:delete-message", { messageId: entry.id }, "DELETE", `/api/chat/mensajes/${entry.id}`);
    if (id !== this.id) return;
    entry.confirmingDelete = false;
    if (answer.success) {
      this.timeline.receive(answer.mensaje);
      entry.versions = null;
    } else {
      entry.actionError = answer.message || "No se pudo eliminar.";
    }
    this.render(entry);
  }

  /** The message as stored now (after a conflict, say). */
  async reload(entry) {
    const id = this.id;
    const page = await api("GET", "/api/chat/mensajes?" + qs({ conversacionId: id, after: entry.seq - 1, limit: 1 }));
    if (id !== this.id || !page.mensajes.length) return;
    this.render(this.timeline.receive(page.mensajes[0]).entry);
  }

  async loadVersions(entry) {
    const id = this.id;
    try {
      const data = await api("GET", `/api/chat/mensajes/${entry.id}/versiones`);
      if (id !== this.id) return;
      entry.versions = data.versiones;
    } catch (err) {
      entry.actionError = err.message;
    }
    this.render(entry);
  }

  // -- jumping to a message (search results) ------------------------------

  /** Show the message with this seq: load its page into the history if needed, then scroll to it. */
  async jumpTo(seq) {
    const id = this.id;
    if (!id || !this.timeline) return;
    if (!this.timeline.bySeq.has(seq)) {
      const before = seq + Math.floor(PAGE / 2) + 1;
      const page = await api("GET", "/api/chat/mensajes?" + qs({ conversacionId: id, before, limit: PAGE }));
      if (id !== this.id) return;
      for (const m of page.mensajes) this.place(this.timeline.receive(m).entry);
      if (page.mensajes.length && page.mensajes[0].seq === this.timeline.oldestSeq) this.hasMoreOlder = page.hasMore;
      this.renderGaps();
      this.renderHistoryStatus();
    }
    const entry = this.timeline.bySeq.get(seq);
    const node = entry && this.nodes.get(entry);
    if (!node) return;
    if (this.highlighted && this.highlighted !== entry) {
      this.highlighted.highlight = false;
      this.render(this.highlighted);
    }
    this.highlighted = entry;
    entry.highlight = true;
    this.render(entry);
    node.scrollIntoView({ block: "center" });
    clearTimeout(this.highlightTimer);
    this.highlightTimer = setTimeout(() => {
      entry.highlight = false;
      this.render(entry);
    }, HIGHLIGHT_MS);
  }

  /** A marker between two shown messages whose seqs are not consecutive. */
  renderGaps() {
    const list = this.n.list;
    for (const gap of list.querySelectorAll(":scope > li.gap")) {
      this.gapObserver.unobserve(gap);
      gap.remove();
    }
    let previous = null;
    for (const child of [...list.children]) {
      const entry = this.entries.get(child);
      if (!entry || entry.seq === null) break; // pending messages come last
      if (previous && entry.seq > previous.seq + 1) {
        const missing = entry.seq - previous.seq - 1;
        const gap = el(
          "li",
          { className: "gap", dataset: { after: String(previous.seq), before: String(entry.seq) } },
          el("button", { type: "button", className: "link-button", dataset: { action: "fill-gap" } }, `Cargar ${missing} mensaje${missing === 1 ? "" : "s"} más`),
        );
        gap.addEventListener("click", () => this.fillGap(gap));
        list.insertBefore(gap, child);
        this.gapObserver.observe(gap);
      }
      previous = entry;
    }
  }

  /** Load the page of messages right after the gap's lower side. */
  async fillGap(gap) {
    if (this.fillingGap || !gap.isConnected) return;
    const id = this.id;
    const after = Number(gap.dataset.after);
    const limit = Math.min(PAGE, Number(gap.dataset.before) - after - 1);
    this.fillingGap = api("GET", "/api/chat/mensajes?" + qs({ conversacionId: id, after, limit }));
    try {
      const page = await this.fillingGap;
      if (id !== this.id) return;
      for (const m of page.mensajes) this.place(this.timeline.receive(m).entry);
      this.renderGaps();
    } finally {
      this.fillingGap = null;
    }
  }

  // -- rendering ---------------------------------------------------------

  /** Put an entry's node where its seq belongs (or update it in place). */
  place(entry) {
    let node = this.nodes.get(entry);
    if (!node) {
      node = el("li");
      node.addEventListener("click", (event) => {
        const button = event.target.closest("button");
        if (button && node.contains(button)) this.act(entry, button);
      });
      node.addEventListener("input", (event) => {
        if (event.target.classList.contains("edit-input")) entry.draft = event.target.value;
      });
      node.addEventListener("keydown", (event) => {
        if (!event.target.classList.contains("edit-input") || event.isComposing) return;
        if (event.key === "Enter" && !event.shiftKey) {
          event.preventDefault();
          this.saveEdit(entry).then(() => this.render(entry));
        } else if (event.key === "Escape") {
          Object.assign(entry, { editing: false, draft: null });
          this.render(entry);
        }
      });
      this.nodes.set(entry, node);
      this.entries.set(node, entry);
    }
    this.render(entry);
    const list = this.n.list;
    let before = null;
    for (const child of list.children) {
      const other = this.entries.get(child);
      if (child !== node && other && compareEntries(other, entry) > 0) {
        before = child;
        break;
      }
    }
    if (node.nextSibling !== before || node.parentNode !== list) list.insertBefore(node, before);
  }

  render(entry) {
    const node = this.nodes.get(entry);
    if (!node) return;
    const flags = [entry.eliminado && "deleted", entry.highlight && "highlight"].filter(Boolean).join(" ");
    node.className = `message ${entry.own ? "own" : "theirs"} ${entry.state} ${flags}`.trim();
    node.dataset.state = entry.state;
    if (entry.seq !== null) node.dataset.seq = String(entry.seq);
    if (entry.clientId) node.dataset.clientId = entry.clientId;
    if (entry.attempts) node.dataset.attempts = String(entry.attempts);
    node.dataset.version = String(entry.version || 1);
    node.dataset.deleted = String(Boolean(entry.eliminado));
    // Re-rendering while the sender edits keeps their cursor in the box.
    const editing = node.contains(document.activeElement) && document.activeElement.classList.contains("edit-input");
    const caret = editing ? document.activeElement.selectionStart : null;
    node.replaceChildren(...messageParts(entry));
    const input = node.querySelector(".edit-input");
    if (editing && input) {
      input.focus();
      input.setSelectionRange(caret, caret);
    }
  }

  nearBottom() {
    const box = this.n.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  scrollToBottom() {
    this.n.messages.scrollTop = this.n.messages.scrollHeight;
  }
}
