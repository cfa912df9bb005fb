// The "Avisos por correo" switch: shown when the server sends e-mail, saved as soon as it changes.

import { api } from "./api.js";
import { byId, show } from "./dom.js";

const wrap = byId("notify-switch");
const box = byId("notify-email");

/** Read the signed-in person's setting and show the switch (if this server sends e-mail). */
export async function loadNotifySwitch() {
  try {
    const data = await api("GET", "/api/chat/notificaciones");
    box.checked = data.correo;
    show(wrap, data.disponible);
  } catch {
    show(wrap, false);
  }
}

export function hideNotifySwitch() {
  show(wrap, false);
}

box.addEventListener("change", async () => {
  const wanted = box.checked;
  box.disabled = true;
  try {
    const data = await api("PUT", "/api/chat/notificaciones", { correo: wanted });
    box.checked = data.correo;
  } catch {
    box.checked = !wanted; // not saved: show what the server still has
  } finally {
    box.disabled = false;
  }
});
