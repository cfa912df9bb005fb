// A signed-in session: the socket, the list, the open conversation, and the
// HTTP fallback (send with POST, poll with GET ?after=) while the socket is down.

import { api } from "./api.js";
import { Connection } from "./connection.js";
import { ConversationList } from "./list.js";
import { ConversationView } from "./conversation.js";
import { byId, show } from "./dom.js";
import { SearchPanel } from "./search.js";
import { DownloadMenu } from "./download.js";

const POLL_MS = 3000;
const FIRST_POLL_MS = 1500; // a blip usually reconnects before this
const REFRESH_EVERY = 2; // polls between list and read-state refreshes

export class ChatSession {
  constructor(me, token, { onSignedOut }) {
    this.me = me;
    this.token = token;
    this.onSignedOut = onSignedOut;
    this.mode = "connecting";
    this.pollTimer = null;
    this.polls = 0;
    this.polling = false;
    this.stopped = false;
    this.routeHandler = () => this.route();
  }

  get connected() {
    return Boolean(this.conn?.connected);
  }

  start() {
    this.list = new ConversationList({
      listNode: byId("conversation-list"),
      emptyNode: byId("list-empty"),
      me: this.me,
      onSelect: (target) => this.select(target),
    });
    const search = new SearchPanel(
      {
        toggle: byId("search-toggle"),
        panel: byId("search-panel"),
        form: byId("search-form"),
        input: byId("search-input"),
        status: byId("search-status"),
        results: byId("search-results"),
        more: byId("search-more"),
      },
      { onPick: (seq) => this.view.jumpTo(seq).catch((err) => this.failed(err)) },
    );
    this.view = new ConversationView({
      me: this.me,
      chat: this,
      list: this.list,
      search,
      downloads: new DownloadMenu({ menu: byId("download-menu"), pdf: byId("download-pdf"), json: byId("download-json") }),
      nodes: {
        conversation: byId("conversation"),
        empty: byId("no-conversation"),
        title: byId("conversation-title"),
        dot: byId("conversation-dot"),
        status: byId("conversation-status"),
        messages: byId("messages"),
        list: byId("message-list"),
        historyStatus: byId("history-status"),
        closedNote: byId("closed-note"),
        composer: byId("composer"),
        input: byId("composer-input"),
        send: byId("send"),
      },
    });
    byId("back").addEventListener("click", () => {
      location.hash = "";
    });
    window.addEventListener("hashchange", this.routeHandler);
    this.setMode("connecting");
    this.conn = new Connection(this.token, {
      onConnect: () => this.connected_(),
      onDisconnect: (reason) => this.disconnected(reason),
      onConnectError: (_err, refused) => this.connectFailed(refused),
      onEvent: (name, payload) => this.dispatch(name, payload),
    });
    this.list.load().then(() => this.route()).catch((err) => this.failed(err));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    window.removeEventListener("hashchange", this.routeHandler);
    this.view?.close();
    this.conn?.close();
  }

  // -- navigation --------------------------------------------------------

  async select({ conversationId, contactId }) {
    if (contactId) {
      const opened = await api("POST", "/api/chat/conversaciones", { otroUsuarioId: contactId });
      conversationId = opened.conversacion.id;
      await this.list.load();
    }
    const target = `#/c/${conversationId}`;
    if (location.hash === target) this.route();
    else location.hash = target;
  }

  /** Open the conversation named in the address (#/c/<id>), or show the list. */
  async route() {
    const match = /^#\/c\/([0-9a-f-]{36})$/.exec(location.hash);
    const row = match ? this.list.get(match[1]) : null;
    byId("chat-view").classList.toggle("showing-conversation", Boolean(row));
    this.list.setActive(row?.id ?? null);
    if (!row) {
      if (this.view.id) this.view.close();
      return;
    }
    if (this.view.id === row.id) return;
    try {
      await this.view.open(row);
      byId("composer-input").focus({ preventScroll: true });
    } catch (err) {
      this.failed(err);
    }
  }

  // -- socket events -----------------------------------------------------

  dispatch(name, p) {
    switch (name) {
      case "chat:message-received":
        if (p.mensaje) this.view.onMessage(p.mensaje);
        break;
      case "chat:conversation-updated":
        if (!this.list.update(p)) this.list.load().catch(() => {});
        if (p.conversacionId === this.view.id && p.mensajesNoLeidos) this.view.markRead();
        break;
      case "chat:message-read":
        this.view.onRead(p);
        break;
      case "chat:message-edited":
        if (p.mensaje) this.view.onEdited(p.mensaje);
        break;
      case "chat:message-deleted":
        this.view.onDeleted(p);
        break;
      case "chat:user-typing":
      case "chat:user-stop-typing":
        this.view.onTyping(name === "chat:user-typing", p);
        break;
      case "chat:presence":
        this.list.setPresence(p.userId, Boolean(p.online));
        this.view.renderPresence();
        break;
      default:
        break;
    }
  }

  // -- connection state --------------------------------------------------

  connected_() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.setMode("online");
    // Re-join the room and catch up from the last seq held; refresh presence and unread.
    this.view.resume().catch(() => {});
    if (this.list.loaded) this.list.load().then(() => this.view.renderPresence()).catch(() => {});
  }

  async disconnected(reason) {
    if (this.stopped) return;
    this.setMode("offline");
    if (reason === "io server disconnect") {
      // The server ended this socket (logout elsewhere, expired token): check before retrying.
      if (await this.signedOut()) return;
      this.conn.retry();
    }
    this.schedulePoll(FIRST_POLL_MS);
  }

  async connectFailed(refused) {
    if (this.stopped) return;
    if (refused) {
      if (await this.signedOut()) return;
      setTimeout(() => this.conn.retry(), POLL_MS);
    }
    if (this.mode === "connecting") this.setMode("offline");
    this.schedulePoll(this.mode === "fallback" ? POLL_MS : 0);
  }

  /** Whether the session has ended (then the page goes back to the login). */
  async signedOut() {
    try {
      await api("GET", "/api/auth/me");
      return false;
    } catch (err) {
      if (err.code !== "unauthenticated") return false;
      this.onSignedOut("Tu sesión ha terminado. Vuelve a iniciar sesión.");
      return true;
    }
  }

  schedulePoll(delay) {
    if (this.pollTimer || this.stopped) return;
    this.pollTimer = setTimeout(() => this.poll(), delay);
  }

  /** One round of the HTTP fallback: catch up the open conversation, send what waits. */
  async poll() {
    this.pollTimer = null;
    if (this.stopped || this.connected || this.polling) return;
    this.polling = true;
    try {
      if (this.view.id) await this.view.poll();
      else await api("GET", "/api/auth/me");
      if (this.polls++ % REFRESH_EVERY === 0) {
        await this.list.load();
        await this.view.refreshReadState();
        this.view.renderPresence();
      }
      if (!this.connected) this.setMode("fallback");
    } catch (err) {
      if (err.code === "unauthenticated" && (await this.signedOut())) return;
      if (!this.connected) this.setMode("offline");
    } finally {
      this.polling = false;
    }
    if (!this.connected) this.schedulePoll(POLL_MS);
  }

  setMode(mode) {
    this.mode = mode;
    document.body.dataset.connection = mode;
    const banner = byId("banner");
    banner.textContent = mode === "offline" ? "Sin conexión con el servidor. Reintentando…" : "";
    show(banner, mode === "offline");
    const note = byId("transport-note");
    note.textContent =
      mode === "fallback"
        ? "Sin conexión en tiempo real: los mensajes se envían por HTTP y se consultan cada pocos segundos."
        : "";
    show(note, mode === "fallback");
  }

  failed(err) {
    if (err?.code === "unauthenticated") {
      this.signedOut();
      return;
    }
    const banner = byId("banner");
    banner.textContent = err?.message || "Algo salió mal.";
    show(banner, true);
  }
}
