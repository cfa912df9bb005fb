// The conversation list: counterpart, online dot, last message, unread badge.

import { api } from "./api.js";
import { el, show, shortTime } from "./dom.js";

export class ConversationList {
  constructor({ listNode, emptyNode, me, onSelect }) {
    this.listNode = listNode;
    this.emptyNode = emptyNode;
    this.me = me;
    this.myRemitente = me.rol === "Psicólogo" ? "psicologo" : "paciente";
    this.onSelect = onSelect;
    this.rows = new Map(); // conversation id -> row
    this.contacts = []; // counterparts with no conversation yet
    this.online = new Map(); // user id -> bool, from chat:presence
    this.activeId = null;
    this.loaded = false;
  }

  /** Load the conversations and the counterparts without one yet. */
  async load() {
    const [list, contacts] = await Promise.all([
      // Closed conversations too (flagged cerrada): the page keeps their history readable.
      api("GET", "/api/chat/conversaciones?incluirCerradas=1"),
      api("GET", "/api/chat/contactos"),
    ]);
    this.rows = new Map(list.conversaciones.map((c) => [c.id, c]));
    for (const c of list.conversaciones) this.online.set(c.otroUsuario.id, c.otroUsuario.online);
    this.contacts = contacts.contactos.filter((c) => !c.conversacionId || !this.rows.has(c.conversacionId));
    for (const c of this.contacts) this.online.set(c.id, c.online);
    this.loaded = true;
    this.render();
  }

  get(conversationId) {
    return this.rows.get(conversationId) || null;
  }

  isOnline(userId) {
    return this.online.get(userId) === true;
  }

  /** chat:conversation-updated; false when the conversation is new to the list (reload it). */
  update({ conversacionId, ultimoMensaje, mensajesNoLeidos }) {
    const row = this.rows.get(conversacionId);
    if (!row) return false;
    if (ultimoMensaje !== undefined) row.ultimoMensaje = ultimoMensaje;
    if (typeof mensajesNoLeidos === "number") row.mensajesNoLeidos = mensajesNoLeidos;
    if (ultimoMensaje?.fechaHora) row.updatedAt = ultimoMensaje.fechaHora;
    this.render();
    return true;
  }

  setUnread(conversationId, count) {
    const row = this.rows.get(conversationId);
    if (row && row.mensajesNoLeidos !== count) {
      row.mensajesNoLeidos = count;
      this.render();
    }
  }

  /** chat:presence */
  setPresence(userId, online) {
    this.online.set(userId, online);
    this.render();
  }

  setActive(conversationId) {
    this.activeId = conversationId;
    this.render();
  }

  get totalUnread() {
    let total = 0;
    for (const row of this.rows.values()) total += row.mensajesNoLeidos || 0;
    return total;
  }

  render() {
    const rows = [...this.rows.values()].sort(
      (a, b) =>
        (b.mensajesNoLeidos > 0) - (a.mensajesNoLeidos > 0) ||
        String(b.updatedAt).localeCompare(String(a.updatedAt)),
    );
    const items = rows.map((row) => this.item(row));
    for (const contact of this.contacts) items.push(this.contactItem(contact));
    this.listNode.replaceChildren(...items);
    const empty = this.loaded && items.length === 0;
    this.emptyNode.textContent =
      this.me.rol === "Psicólogo"
        ? "Todavía no tienes pacientes asignados."
        : "Todavía no tienes un psicólogo asignado.";
    show(this.emptyNode, empty);
    document.title = this.totalUnread ? `(${this.totalUnread}) MiauBloom · Chat` : "MiauBloom · Chat";
  }

  item(row) {
    const last = row.ultimoMensaje;
    // User text sits in bidi isolates (<bdi>): it cannot reorder the words around it.
    let preview = ["Sin mensajes todavía"];
    if (last) {
      const text = last.eliminado ? "Mensaje eliminado" : el("bdi", {}, last.contenido);
      preview = [last.remitente === this.myRemitente ? "Tú: " : "", text];
    }
    if (row.cerrada) preview = ["Conversación cerrada · ", ...preview];
    const button = this.button(row.otroUsuario, preview, last?.fechaHora, row.mensajesNoLeidos, {
      conversationId: row.id,
    });
    if (row.id === this.activeId) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => this.onSelect({ conversationId: row.id }));
    return el("li", {}, button);
  }

  contactItem(contact) {
    const who = { id: contact.id, nombre: contact.nombreCompleto };
    const button = this.button(who, ["Empezar la conversación"], null, 0, { contactId: contact.id });
    button.addEventListener("click", () => this.onSelect({ contactId: contact.id }));
    return el("li", {}, button);
  }

  button(who, preview, when, unread, dataset) {
    const online = this.isOnline(who.id);
    const badge = unread
      ? el("span", { className: "badge", "aria-label": `${unread} sin leer` }, String(unread))
      : null;
    return el(
      "button",
      { type: "button", className: "conversation-item", dataset: { ...dataset, userId: who.id } },
      el("span", {
        className: online ? "dot online" : "dot",
        role: "img",
        "aria-label": online ? "En línea" : "Desconectado",
      }),
      el(
        "span",
        { className: "item-main" },
        el("span", { className: "item-name" }, el("bdi", {}, who.nombre)),
        el("span", { className: "item-preview" }, ...preview),
      ),
      el("span", { className: "item-meta" }, el("time", { datetime: when || undefined }, shortTime(when)), badge),
    );
  }
}
