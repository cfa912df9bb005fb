// The largest messages the chat accepts, sent as the MiauBloom app sends them: over its
// cookie socket (WebSocket, then long-polling only) and over its HTTP fallback, each
// with the text that JSON makes biggest. Prints one JSON line; tests/test_js_client.py
// asserts on it. Usage: node big_messages.mjs URL SETUP_JSON
import { io } from "socket.io-client";

import { Browser, until } from "./app.mjs";

const [url, setupJson] = process.argv.slice(2);
const { password, paciente, psicologo, conversacionId } = JSON.parse(setupJson);
const out = { socket: {}, http: {} };

const LIMIT = 65535; // bytes of UTF-8 in Mensajes.contenido
// Texts of exactly LIMIT bytes: 3-byte characters, and the characters JSON escapes
// most (control characters become \u00XX: 6 bytes for 1; quotes and backslashes 2).
const bytes = (s) => Buffer.byteLength(s, "utf8");
const fill = (unit) => unit.repeat(Math.floor(LIMIT / bytes(unit))) + "x".repeat(LIMIT % bytes(unit));
const texts = {
  euro: "€".repeat(LIMIT / 3),
  control: "a" + "\u0001\u001f".repeat(32765) + "\u0001" + '"\\' + "z",
  mixed: fill("ñ\"\\\n\t🌸"),
};
for (const [name, text] of Object.entries(texts)) {
  if (bytes(text) !== LIMIT) throw new Error(`${name} is ${bytes(text)} bytes`);
}
const oneMore = "€".repeat(LIMIT / 3) + "a";

function finish(error) {
  if (error) out.error = String(error.stack || error);
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(error ? 1 : 0));
}
setTimeout(() => finish(new Error("timed out")), 50000);

try {
  const pac = new Browser(url, "paciente");
  const psi = new Browser(url, "psicologo");
  await pac.login(paciente.email, password, "Paciente");
  await psi.login(psicologo.email, password, "Psicólogo");
  const me = (await pac.session()).data.user;
  const received = [];
  const reader = psi.connect();
  reader.on("chat:message-received", ({ mensaje }) => received.push(mensaje));
  await until("the reader", () => reader.connected);
  await reader.timeout(5000).emitWithAck("chat:join-room", { conversacionId });

  for (const transports of [["websocket"], ["polling"]]) {
    const name = transports[0];
    const socket = io(url, { transports, reconnection: false, extraHeaders: { Cookie: `auth_token=${pac.cookie}` } });
    await until(`the ${name} socket`, () => socket.connected);
    const result = (out.socket[name] = { sent: {}, maxPayload: null });
    out.maxPayload = socket.io.engine._maxPayload;
    for (const [label, text] of Object.entries(texts)) {
      // As the app sends: no ack, userId and rol along. The other member's socket says whether it came.
      const before = received.length;
      socket.emit("chat:send-message", { conversacionId, contenido: text, userId: me.id, rol: me.rol });
      await until(`${label} over ${name}`, () => received.length > before || !socket.connected, 20000);
      const got = received[received.length - 1];
      result.sent[label] = { connected: socket.connected, same: received.length > before && got.contenido === text.trim(), seq: got?.seq };
    }
    result.oneMore = await socket.timeout(10000).emitWithAck("chat:send-message", { conversacionId, contenido: oneMore });
    result.stillConnected = socket.connected;
    socket.close();
  }

  for (const [label, text] of Object.entries({ ...texts, oneMore })) {
    const r = await pac.fetch("/api/chat/mensajes", { method: "POST", body: { conversacionId, contenido: text } });
    out.http[label] = { status: r.status, code: r.data?.code ?? null, same: r.data?.mensaje?.contenido === text.trim() };
  }
  out.texts = Object.fromEntries(Object.entries(texts).map(([k, v]) => [k, { bytes: bytes(v), json: bytes(JSON.stringify(v)) }]));
  reader.close();
  finish();
} catch (error) {
  finish(error);
}
