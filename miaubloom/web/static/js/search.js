// Searching the open conversation (v1.2): a box under its header, results newest
// first with "more" paging; picking one asks the view to show it in its history.

import { api, qs } from "./api.js";
import { el, show, shortTime } from "./dom.js";

const PAGE = 20;

export class SearchPanel {
  /** nodes: toggle, panel, form, input, status, results, more; onPick(seq). */
  constructor(nodes, { onPick }) {
    this.n = nodes;
    this.onPick = onPick;
    this.conversationId = null;
    this.query = "";
    this.before = null;
    this.generation = 0;
    nodes.toggle.addEventListener("click", () => this.setOpen(nodes.panel.hidden));
    nodes.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(nodes.input.value.trim());
    });
    nodes.more.addEventListener("click", () => this.load());
    nodes.results.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-seq]");
      if (button) this.onPick(Number(button.dataset.seq));
    });
  }

  /** A conversation was opened (or closed: null): start empty and closed. */
  reset(conversationId) {
    this.conversationId = conversationId;
    this.generation++;
    this.query = "";
    this.n.input.value = "";
    this.n.results.replaceChildren();
    this.n.status.textContent = "";
    show(this.n.more, false);
    this.setOpen(false);
  }

  setOpen(open) {
    show(this.n.panel, open);
    this.n.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.n.input.focus();
  }

  async search(query) {
    if (query.length < 2) {
      this.n.status.textContent = "Escribe al menos 2 letras.";
      return;
    }
    this.query = query;
    this.before = null;
    this.n.results.replaceChildren();
    await this.load();
  }

  /** The next page of results for the current query. */
  async load() {
    const generation = ++this.generation;
    show(this.n.more, false);
    this.n.status.textContent = "Buscando…";
    const params = { conversacionId: this.conversationId, q: this.query, before: this.before, limit: PAGE };
    let page;
    try {
      page = await api("GET", "/api/chat/mensajes/buscar?" + qs(params));
    } catch (err) {
      if (generation === this.generation) this.n.status.textContent = err.message;
      return;
    }
    if (generation !== this.generation) return;
    for (const m of page.mensajes) this.n.results.append(this.item(m));
    if (page.mensajes.length) this.before = page.mensajes[page.mensajes.length - 1].seq;
    const count = this.n.results.children.length;
    this.n.status.textContent = count ? `${count}${page.hasMore ? "+" : ""} resultado${count === 1 ? "" : "s"}` : "Sin resultados.";
    show(this.n.more, page.hasMore);
  }

  item(m) {
    return el(
      "li",
      {},
      el(
        "button",
        { type: "button", className: "search-result", dataset: { seq: String(m.seq) } },
        el("time", { datetime: m.createdAt }, shortTime(m.createdAt)),
        el("bdi", { className: "search-text" }, m.contenido),
      ),
    );
  }
}
