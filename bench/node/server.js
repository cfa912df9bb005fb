// The Node reference server of bench/: the chat's protocol subset that the load uses,
// on the original's stack done well (socket.io 4.8 + mysql2 prepared statements, a
// connection pool), on the same tables and the same JWT secret as the Python server.
//
// Events: connect (token from the auth object, the Bearer header or the auth_token
// cookie; a revoked token is refused), chat:join-room, chat:send-message (ack; seq
// allocated per conversation in one transaction; a repeated clientId answers the stored
// message), chat:message-received to the conversation's room, chat:conversation-updated
// to each member's room, chat:presence on a user's first and last socket.
//
// Settings from the environment: HOST, PORT, DATABASE_URL (the chat's SQLAlchemy URL,
// mysql+pymysql://user:pass@host:port/db), JWT_SECRET, DB_POOL_SIZE (10).
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const mysql = require("mysql2/promise");
const { Server } = require("socket.io");

const HOST = process.env.HOST || "127.0.0.1";
const PORT = Number(process.env.PORT || 8000);
const SECRET = process.env.JWT_SECRET || "";
const MAX_LENGTH = Number(process.env.MAX_MESSAGE_LENGTH || 65535);
const ROLES = { Paciente: "Paciente", "Psicólogo": "Psicólogo", Psicologo: "Psicólogo" };
const NOT_MEMBER = "No perteneces a esta conversación";
const CLOSED = "Conversación cerrada";

function dbConfig(url) {
  const u = new URL(url.replace(/^mysql\+\w+:/, "mysql:"));
  return {
    host: u.hostname || "127.0.0.1",
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username || "root"),
    password: decodeURIComponent(u.password || ""),
    database: u.pathname.replace(/^\//, ""),
    charset: "utf8mb4",
    timezone: "Z",
    dateStrings: false,
    connectionLimit: Number(process.env.DB_POOL_SIZE || 10),
    waitForConnections: true,
    queueLimit: 0,
  };
}

const pool = mysql.createPool(dbConfig(process.env.DATABASE_URL || ""));

// -- auth: HS256 JWTs as the chat and the MiauBloom app issue them ----------------------

function b64url(buf) {
  return buf.toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function verifyToken(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const expected = Buffer.from(
    b64url(crypto.createHmac("sha256", SECRET).update(`${parts[0]}.${parts[1]}`).digest()),
  );
  const given = Buffer.from(parts[2]);
  if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) return null;
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], "base64url").toString());
    claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
  } catch {
    return null;
  }
  if (header.alg !== "HS256" || typeof claims.exp !== "number") return null;
  if (claims.exp <= Date.now() / 1000) return null;
  const rol = ROLES[claims.rol];
  if (typeof claims.userId !== "string" || !claims.userId || !rol) return null;
  return { userId: claims.userId, rol, exp: claims.exp, hash: crypto.createHash("sha256").update(token).digest("hex") };
}

function tokenOf(handshake) {
  if (handshake.auth && typeof handshake.auth.token === "string" && handshake.auth.token) {
    return handshake.auth.token;
  }
  const header = handshake.headers.authorization || "";
  if (header.slice(0, 7).toLowerCase() === "bearer ") return header.slice(7).trim();
  for (const part of (handshake.headers.cookie || "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === "auth_token") return decodeURIComponent(v.join("="));
  }
  return null;
}

// -- wire shapes (docs/PROTOCOL.md) -----------------------------------------------------

function mensaje(row) {
  return {
    id: row.id,
    conversacionId: row.conversacion_id,
    seq: row.seq,
    remitente: row.remitente,
    remitenteId: row.remitente_id,
    contenido: row.contenido,
    leido: Boolean(row.leido),
    createdAt: row.created_at.toISOString(),
    clientId: row.client_id === null ? null : String(row.client_id),
    version: row.version,
    editadoAt: row.editado_at ? row.editado_at.toISOString() : null,
    eliminado: row.eliminado_at != null,
  };
}

function fold(text) {
  return /^[\x00-\x7f]*$/.test(text)
    ? text.toLowerCase()
    : text.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
}

function nack(message, code) {
  return { success: false, message, code };
}

// -- the store --------------------------------------------------------------------------

async function memberConversation(user, conversacionId) {
  const [rows] = await pool.execute(
    "SELECT id, psicologo_id, paciente_id, last_seq FROM Conversaciones WHERE id = ? AND (psicologo_id = ? OR paciente_id = ?)",
    [conversacionId, user.userId, user.userId],
  );
  return rows[0] || null;
}

async function storeMessage(user, conversacionId, contenido, clientId) {
  const psicologo = user.rol === "Psicólogo";
  const unreadColumn = psicologo ? "no_leidos_paciente" : "no_leidos_psicologo";
  const now = new Date();
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    await conn.execute(
      `UPDATE Conversaciones SET last_seq = last_seq + 1, ${unreadColumn} = ${unreadColumn} + 1, updated_at = ? WHERE id = ?`,
      [now, conversacionId],
    );
    const [rows] = await conn.execute(
      "SELECT c.id, c.psicologo_id, c.paciente_id, c.last_seq, c.no_leidos_paciente, c.no_leidos_psicologo, p.psicologo_asignado_id AS asignado FROM Conversaciones c LEFT JOIN Perfiles_Paciente p ON p.user_id = c.paciente_id WHERE c.id = ?",
      [conversacionId],
    );
    const conv = rows[0];
    const member = conv && (psicologo ? conv.psicologo_id : conv.paciente_id) === user.userId;
    if (!member || conv.asignado !== conv.psicologo_id) {
      await conn.rollback();
      return { refusal: nack(member ? CLOSED : NOT_MEMBER, "forbidden") };
    }
    const row = {
      id: crypto.randomUUID(),
      conversacion_id: conversacionId,
      remitente: psicologo ? "psicologo" : "paciente",
      remitente_id: user.userId,
      contenido,
      leido: 0,
      created_at: now,
      seq: conv.last_seq,
      client_id: clientId,
      version: 1,
      editado_at: null,
      eliminado_at: null,
    };
    await conn.execute(
      "INSERT INTO Mensajes (id, conversacion_id, remitente, remitente_id, contenido, leido, created_at, seq, client_id, leido_at, version, editado_at, eliminado_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, NULL, 1, NULL, NULL)",
      [row.id, conversacionId, row.remitente, user.userId, contenido, now, row.seq, clientId],
    );
    await conn.execute(
      "INSERT INTO chat_mensajes_busqueda (conversacion_id, seq, busqueda) VALUES (?, ?, ?)",
      [conversacionId, row.seq, fold(contenido)],
    );
    await conn.commit();
    return { row, conv, created: true };
  } catch (err) {
    await conn.rollback().catch(() => {});
    if (err && err.code === "ER_DUP_ENTRY" && clientId !== null) {
      const [rows] = await conn.execute(
        "SELECT * FROM Mensajes WHERE conversacion_id = ? AND remitente_id = ? AND client_id = ?",
        [conversacionId, user.userId, clientId],
      );
      if (rows[0]) return { row: rows[0], created: false };
    }
    throw err;
  } finally {
    conn.release();
  }
}

// -- the server -------------------------------------------------------------------------

const httpServer = http.createServer((req, res) => {
  if (req.url === "/api/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"success":true}');
    return;
  }
  res.writeHead(404, { "Content-Type": "application/json" });
  res.end('{"success":false,"code":"not_found"}');
});
const io = new Server(httpServer, { serveClient: false, cors: { origin: false } });
const online = new Map(); // userId -> open sockets

io.use(async (socket, next) => {
  const user = verifyToken(tokenOf(socket.handshake));
  if (!user) return next(Object.assign(new Error("No autenticado"), { data: { code: "unauthenticated" } }));
  try {
    const [rows] = await pool.execute("SELECT 1 FROM chat_tokens_revocados WHERE token_hash = ?", [user.hash]);
    if (rows.length) return next(Object.assign(new Error("Sesión cerrada"), { data: { code: "unauthenticated" } }));
  } catch (err) {
    return next(err);
  }
  socket.data.user = user;
  next();
});

async function announcePresence(userId, isOnline) {
  const [pairs] = await pool.execute(
    "SELECT id, psicologo_id, paciente_id FROM Conversaciones WHERE psicologo_id = ? OR paciente_id = ?",
    [userId, userId],
  );
  if (!pairs.length) return;
  const targets = [];
  for (const c of pairs) {
    targets.push(`conv:${c.id}`, `user:${c.psicologo_id === userId ? c.paciente_id : c.psicologo_id}`);
  }
  io.to(targets).emit("chat:presence", { userId, online: isOnline, lastSeen: new Date().toISOString() });
}

io.on("connection", (socket) => {
  const user = socket.data.user;
  socket.join(`user:${user.userId}`);
  const count = (online.get(user.userId) || 0) + 1;
  online.set(user.userId, count);
  if (count === 1) announcePresence(user.userId, true).catch(() => {});

  socket.on("disconnect", () => {
    const left = (online.get(user.userId) || 1) - 1;
    if (left > 0) online.set(user.userId, left);
    else {
      online.delete(user.userId);
      announcePresence(user.userId, false).catch(() => {});
    }
  });

  socket.on("chat:join-room", async (data, ack) => {
    if (typeof ack !== "function") return;
    if (!data || typeof data.conversacionId !== "string") return ack(nack("conversacionId requerido", "validation"));
    try {
      const conv = await memberConversation(user, data.conversacionId);
      if (!conv) return ack(nack(NOT_MEMBER, "forbidden"));
      const room = `conv:${conv.id}`;
      socket.join(room);
      socket.to(room).emit("chat:user-joined", { userId: user.userId, conversacionId: conv.id });
      const other = conv.psicologo_id === user.userId ? conv.paciente_id : conv.psicologo_id;
      ack({ success: true, conversacionId: conv.id, lastSeq: conv.last_seq, online: online.has(other) });
    } catch {
      ack(nack("Error interno", "internal"));
    }
  });

  socket.on("chat:send-message", async (data, ack) => {
    if (typeof ack !== "function") return;
    const ok =
      data &&
      typeof data.conversacionId === "string" &&
      typeof data.contenido === "string" &&
      data.contenido.trim() !== "" &&
      [...data.contenido].length <= MAX_LENGTH &&
      (data.clientId === undefined || data.clientId === null || (typeof data.clientId === "string" && data.clientId.length <= 64));
    if (!ok) return ack(nack("Mensaje inválido", "validation"));
    try {
      const out = await storeMessage(user, data.conversacionId, data.contenido, data.clientId ?? null);
      if (out.refusal) return ack(out.refusal);
      const wire = mensaje(out.row);
      if (out.created) {
        const conv = out.conv;
        io.to(`conv:${conv.id}`).emit("chat:message-received", { mensaje: wire });
        const ultimo = {
          contenido: wire.contenido,
          remitente: wire.remitente,
          fechaHora: wire.createdAt,
          leido: false,
          editadoAt: null,
          eliminado: false,
        };
        io.to(`user:${conv.psicologo_id}`).emit("chat:conversation-updated", {
          conversacionId: conv.id, ultimoMensaje: ultimo, mensajesNoLeidos: conv.no_leidos_psicologo,
        });
        io.to(`user:${conv.paciente_id}`).emit("chat:conversation-updated", {
          conversacionId: conv.id, ultimoMensaje: ultimo, mensajesNoLeidos: conv.no_leidos_paciente,
        });
      }
      ack({ success: true, mensaje: wire });
    } catch {
      ack(nack("Error interno", "internal"));
    }
  });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`node chat on http://${HOST}:${PORT} (pid ${process.pid})`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}
