// One message as DOM: its text (or "Mensaje eliminado"), time, "editado" mark,
// tick, and for the sender's own messages the edit and delete actions (v1.2).
// Buttons carry data-action; the conversation view handles the clicks.

import { el, shortTime } from "./dom.js";

const TICKS = {
  pending: ["enviando…", "Enviando"],
  sent: ["✓", "Enviado"],
  read: ["✓✓", "Leído"],
  failed: ["no enviado", "No enviado"],
};

/** The edit window (seconds) the server announces on the page: <body data-edit-window>. */
export function editWindowSeconds() {
  const seconds = Number(document.body.dataset.editWindow);
  return Number.isFinite(seconds) ? seconds : 0;
}

/** Whether the sender may still edit or delete this entry (the server decides in the end). */
export function canModify(entry) {
  if (!entry.own || entry.seq === null || entry.eliminado || entry.state === "failed") return false;
  const sent = Date.parse(entry.createdAt);
  return Number.isFinite(sent) && Date.now() - sent < editWindowSeconds() * 1000;
}

function action(name, label, extra = {}) {
  return el("button", { type: "button", className: `link-button ${name}`, dataset: { action: name }, ...extra }, label);
}

function textPart(entry) {
  if (entry.eliminado) return el("p", { className: "message-text deleted-text" }, "Mensaje eliminado");
  // Shown as sent, in an isolate of its own (dir=auto): a U+202E in it reverses only itself.
  if (!entry.editing) return el("p", { className: "message-text", dir: "auto" }, entry.contenido);
  const input = el("textarea", { className: "edit-input", rows: "2", "aria-label": "Editar el mensaje" });
  input.value = entry.draft ?? entry.contenido;
  return el(
    "div",
    { className: "message-editor" },
    input,
    el("span", { className: "editor-actions" }, action("edit-save", "Guardar"), " ", action("edit-cancel", "Cancelar")),
  );
}

function metaPart(entry) {
  const meta = el("span", { className: "message-meta" });
  if (entry.editadoAt && !entry.eliminado) {
    meta.append(action("versions", "editado", { title: "Ver las versiones", "aria-expanded": String(Boolean(entry.versions)) }), " · ");
  }
  meta.append(el("time", { datetime: entry.createdAt }, shortTime(entry.createdAt)));
  if (entry.own && !entry.eliminado) {
    const [symbol, label] = TICKS[entry.state];
    meta.append(" ", el("span", { className: "tick", title: label, "aria-label": label }, symbol));
  }
  return meta;
}

function versionsPart(entry) {
  if (!entry.versions) return null;
  const items = entry.versions.map((v) =>
    el(
      "li",
      { dataset: { version: String(v.version) } },
      el("span", { className: "version-when" }, v.version === 1 ? "Original" : `Versión ${v.version} · ${shortTime(v.editadoAt)}`),
      el("span", { className: "version-text", dir: "auto" }, v.contenido),
    ),
  );
  return el("ol", { className: "versions", "aria-label": "Versiones del mensaje" }, ...items);
}

function actionsPart(entry) {
  if (entry.editing || !canModify(entry)) return null;
  if (entry.confirmingDelete) {
    return el(
      "span",
      { className: "message-actions confirming" },
      "¿Eliminar para los dos? ",
      action("delete-confirm", "Sí, eliminar"),
      " · ",
      action("delete-cancel", "No"),
    );
  }
  return el("span", { className: "message-actions" }, action("edit", "Editar"), " · ", action("delete", "Eliminar"));
}

/** The children of a message's <li>. */
export function messageParts(entry) {
  const parts = [textPart(entry), metaPart(entry), versionsPart(entry), actionsPart(entry)];
  if (entry.actionError) parts.push(el("p", { className: "message-error", role: "alert" }, entry.actionError));
  if (entry.state === "failed") {
    parts.push(
      el("p", { className: "message-error", role: "alert" }, entry.error || "No enviado"),
      el("button", { type: "button", className: "retry link-button" }, "Reintentar"),
    );
  }
  return parts.filter(Boolean);
}
