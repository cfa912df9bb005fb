// The page: log in (or register), then a chat session; the token stays in this tab.

import { api, session } from "./api.js";
import { ChatSession } from "./chat.js";
import { byId, show } from "./dom.js";
import { hideNotifySwitch, loadNotifySwitch } from "./notifications.js";

let chat = null;

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function showError(id, message) {
  const node = byId(id);
  node.textContent = message || "";
  show(node, Boolean(message));
}

function showLogin(message = "") {
  chat?.stop();
  chat = null;
  session.token = null;
  show(byId("chat-view"), false);
  show(byId("me"), false);
  hideNotifySwitch();
  show(byId("banner"), false);
  show(byId("transport-note"), false);
  show(byId("auth-view"), true);
  delete document.body.dataset.connection;
  document.title = "MiauBloom · Chat";
  showError("login-error", message);
  byId("login-email").focus();
}

function startChat(user) {
  show(byId("auth-view"), false);
  byId("me-name").textContent = `${user.nombreCompleto} · ${user.rol}`;
  show(byId("me"), true);
  loadNotifySwitch();
  show(byId("chat-view"), true);
  chat = new ChatSession(user, session.token, { onSignedOut: showLogin });
  chat.start();
}

async function logIn(email, password) {
  const data = await api("POST", "/api/auth/login", { email, password });
  session.token = data.token;
  startChat(data.user);
}

function busy(form, on) {
  for (const control of form.elements) control.disabled = on;
}

byId("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { email, password } = formData(form);
  if (!email || !password) return showError("login-error", "Escribe tu correo y tu contraseña.");
  busy(form, true);
  try {
    showError("login-error", "");
    await logIn(email, password);
    form.reset();
  } catch (err) {
    showError("login-error", err.message);
  } finally {
    busy(form, false);
  }
});

byId("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = formData(form);
  busy(form, true);
  try {
    showError("register-error", "");
    await api("POST", "/api/auth/register", body);
    await logIn(body.email, body.password);
    form.reset();
  } catch (err) {
    showError("register-error", err.message);
  } finally {
    busy(form, false);
  }
});

byId("logout").addEventListener("click", async () => {
  chat?.stop();
  chat = null;
  try {
    await api("POST", "/api/auth/logout");
  } catch {
    // Signed out here anyway; the token is forgotten below.
  }
  location.hash = "";
  showLogin();
});

// A reload keeps the session: the token in this tab, or the httpOnly cookie.
api("GET", "/api/auth/me")
  .then((data) => startChat(data.user))
  .catch(() => showLogin());
