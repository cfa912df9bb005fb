// "Descargar": the open conversation as a PDF transcript or as JSON (issue 17).
// Plain links to GET /api/chat/exportar: the browser streams the download to disk
// (the auth_token cookie goes along, same origin), however long the conversation.

import { qs } from "./api.js";

const FORMATS = ["pdf", "json"];

export class DownloadMenu {
  /** nodes: menu (a <details>), pdf, json (links). */
  constructor(nodes) {
    this.n = nodes;
    for (const formato of FORMATS) {
      // Close the menu once a format is picked; the download goes on by itself.
      nodes[formato].addEventListener("click", () => {
        nodes.menu.open = false;
      });
    }
  }

  /** A conversation was opened (or closed: null): point the links at it. */
  reset(conversationId) {
    this.n.menu.open = false;
    this.n.menu.hidden = !conversationId;
    for (const formato of FORMATS) {
      const link = this.n[formato];
      if (conversationId) link.href = "/api/chat/exportar?" + qs({ conversacionId: conversationId, formato });
      else link.removeAttribute("href");
    }
  }
}
