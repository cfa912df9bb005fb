// The original MiauBloom front end's flow, with the socket.io-client it ships:
// a cookie-authenticated patient and a token-authenticated psychologist.
// Prints one JSON line with what each side saw; the Python test asserts on it.
import { io } from "socket.io-client";

const [url, patientToken, psychologistToken, conversacionId, patientId, badToken] = process.argv.slice(2);
const seen = { patient: [], psychologist: [], refused: null };
const done = (code) => { console.log(JSON.stringify(seen)); process.exit(code); };
setTimeout(() => { seen.timeout = true; done(1); }, 15000);

const record = (who, socket) => socket.onAny((event, payload) => seen[who].push([event, payload]));
const connected = (socket) => new Promise((resolve, reject) => {
  socket.on("connect", resolve);
  socket.on("connect_error", reject);
});
const until = (who, event) => new Promise((resolve) => {
  const check = () => {
    const hit = seen[who].find(([name]) => name === event);
    if (hit) resolve(hit[1]); else setTimeout(check, 20);
  };
  check();
});

// A bad token is refused with the documented code in err.data.
const refused = io(url, { auth: { token: badToken }, transports: ["websocket"], reconnection: false });
try { await connected(refused); } catch (err) { seen.refused = { message: err.message, data: err.data }; }
refused.close();

const patient = io(url, { extraHeaders: { Cookie: `auth_token=${patientToken}` }, transports: ["websocket"] });
const psychologist = io(url, { auth: { token: psychologistToken }, transports: ["websocket"] });
record("patient", patient);
record("psychologist", psychologist);
await Promise.all([connected(patient), connected(psychologist)]);

// As server.js's clients did: join and send with userId/rol, no acknowledgement.
// The psychologist is in the room before the patient joins (acks order the two sockets).
await psychologist.timeout(5000).emitWithAck("chat:join-room", { conversacionId });
patient.emit("chat:join-room", { conversacionId, userId: patientId });
await until("psychologist", "chat:user-joined");
patient.emit("chat:send-message", { conversacionId, contenido: "hola desde node", userId: patientId, rol: "Paciente" });
await until("patient", "chat:message-received");
await until("psychologist", "chat:message-received");
patient.emit("chat:typing", { conversacionId });
await until("psychologist", "chat:user-typing");
patient.emit("chat:stop-typing", { conversacionId });
await until("psychologist", "chat:user-stop-typing");
// An ack-style call works too.
seen.ack = await patient.timeout(5000).emitWithAck("chat:sync", { conversacionId, afterSeq: 0 });
patient.emit("chat:leave-room", { conversacionId });
await until("psychologist", "chat:user-left");
patient.close();
psychologist.close();
done(0);
