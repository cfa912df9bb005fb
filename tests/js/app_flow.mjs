// A patient and her psychologists use the MiauBloom app's chat pages (tests/js/app.mjs)
// against the chat: login, list, badge, history, typing, ✓✓, the HTTP fallback and a
// reassignment. Prints one JSON line of what each screen showed; the Python test
// (tests/test_js_client.py) asserts on it. Usage: node app_flow.mjs URL SETUP_JSON
import { Badge, Browser, ChatWindow, ConversationList, now, sleep, until } from "./app.mjs";

const [url, setupJson] = process.argv.slice(2);
const setup = JSON.parse(setupJson); // {password, paciente, psicologo, nuevo: {email}, seeded}
const TYPING_SECONDS = Number(setup.typingSeconds ?? 20);
const out = { t0: now(), steps: {} };
const step = (name, value = now()) => (out.steps[name] = value);
const browsers = [];

const watchdog = setTimeout(() => finish(new Error("the flow took over 55 s")), 55000);

async function finish(error) {
  clearTimeout(watchdog);
  if (error) out.error = String(error.stack || error);
  for (const b of browsers) b.close();
  // Exit only once the (long) line is written: a pipe takes it in pieces.
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(error ? 1 : 0));
}

/** Log in through the login page of a role, then the pages mount (AuthContext, list, badge). */
async function arrive(name, who, rol) {
  const browser = new Browser(url, name);
  browsers.push(browser);
  const login = await browser.login(who.email, setup.password, rol);
  const session = await browser.session();
  out[name] = { login: login.data, status: login.status, session: session.data };
  if (!login.ok || !session.data?.authenticated) throw new Error(`${name} could not log in`);
  const user = session.data.user;
  const list = new ConversationList(browser);
  const badge = new Badge(browser);
  browser.connect();
  await until(`${name}'s socket`, () => browser.socket.connected);
  return { browser, user, list, badge };
}

const record = (name, window) => {
  out[name] = {
    ...(out[name] || {}),
    loaded: window.loaded && { at: window.loaded.at, mensajes: window.loaded.mensajes },
    mensajes: window.mensajes,
    typingChanges: window.typingChanges,
  };
};

try {
  // A wrong role on the login page is refused like a wrong password.
  const stray = new Browser(url, "stray");
  browsers.push(stray);
  out.wrongRole = (await stray.login(setup.paciente.email, setup.password, "Psicólogo")).data;

  const pac = await arrive("paciente", setup.paciente, "Paciente");
  const psi = await arrive("psicologo", setup.psicologo, "Psicólogo");
  const [row] = await until("the psychologist's list", () => psi.list.rows?.length && psi.list.rows);
  await until("the patient's list", () => pac.list.rows?.length);
  const cid = row.id;
  step("listsShown");

  // The psychologist opens the conversation: the whole history, now read.
  const psiWindow = new ChatWindow(psi.browser, psi.user, cid);
  await psiWindow.ready;
  step("psiOpened");
  // Then the patient opens it.
  const pacWindow = new ChatWindow(pac.browser, pac.user, cid);
  await pacWindow.ready;
  step("pacOpened");
  const lastOfPsi = [...psiWindow.mensajes].reverse().find((m) => m.remitenteId === psi.user.id);
  await until("✓✓ on the psychologist's last message", () => psiWindow.shown(lastOfPsi.contenido)?.tick === "✓✓");
  step("psiSawRead");

  // The patient types a long message: a keystroke every 50 ms for TYPING_SECONDS.
  const text = "Hoy me siento mejor, gracias por la sesión. ".repeat(20);
  const keystrokes = TYPING_SECONDS * 20;
  step("typingStarted");
  for (let i = 0; i < keystrokes; i++) {
    pacWindow.keystroke();
    await sleep(50);
  }
  step("lastKeystroke");
  await until("the typing indicator to end", () => !psiWindow.typing && psiWindow.typingChanges.length >= 2, 8000);
  step("typingEnded");
  const typed = text.slice(0, keystrokes).trim();
  await pacWindow.send(typed);
  await until("the message on the psychologist's screen", () => psiWindow.shown(typed));
  step("typedArrived");
  await until("an unread count on the psychologist's list", () => psi.list.after(out.steps.typedArrived)?.[0]?.noLeidos === 1, 8000);
  step("psiListUnread");

  // The psychologist's connection drops; her answer goes over HTTP.
  psi.browser.socket.disconnect();
  const reply = "Me alegra mucho, Lucía.";
  out.fallback = await psiWindow.send(reply);
  await until("the HTTP answer on the patient's screen", () => pacWindow.shown(reply));
  step("fallbackArrived");
  record("psicologoWindow", psiWindow);
  psiWindow.close();
  // Back online, she opens the conversation again: the patient's message is read now.
  psi.browser.socket.connect();
  await until("the psychologist's socket again", () => psi.browser.socket.connected);
  const psiAgain = new ChatWindow(psi.browser, psi.user, cid);
  await psiAgain.ready;
  step("psiReopened");
  await until("✓✓ on the patient's typed message", () => pacWindow.shown(typed)?.tick === "✓✓");
  step("pacSawRead");
  record("psicologoAgain", psiAgain);
  psiAgain.close();

  // Badges (polled every 10 s): nothing unread once each had opened the conversation.
  await until("the badges at 0", () =>
    [pac, psi].every((p) => p.badge.seen.some(([at, n]) => at > out.steps.pacOpened && n === 0)), 12000);
  step("badgesCleared");

  // Reassignment: the first psychologist releases the patient, another takes her.
  out.release = (await psi.browser.fetch("/api/psicologo/liberar-paciente", {
    method: "POST", body: { pacienteId: pac.user.id },
  })).status;
  const nuevo = await arrive("nuevo", setup.nuevo, "Psicólogo");
  out.assign = (await nuevo.browser.fetch("/api/psicologo/asignar-paciente", {
    method: "POST", body: { pacienteId: pac.user.id },
  })).status;
  step("reassigned");
  const [newRow] = await until("the new psychologist in the patient's list", () => {
    const rows = pac.list.after(out.steps.reassigned);
    return rows && rows.length === 1 && rows[0].otroId === nuevo.user.id && rows;
  }, 8000);
  // Written in the old window, still open: the server says why it is refused.
  await pacWindow.send("¿Sigue ahí, doctora?");
  await until("the refusal", () => pac.browser.errors.length);
  record("pacienteWindow", pacWindow);
  pacWindow.close();
  const pacNew = new ChatWindow(pac.browser, pac.user, newRow.id);
  await pacNew.ready;
  await pacNew.send("Hola, soy Lucía");
  await until("the message on the new psychologist's list", () => {
    const rows = nuevo.list.after(out.steps.reassigned);
    return rows?.[0]?.id === newRow.id && rows[0].noLeidos === 1;
  }, 8000);
  step("newConversation");
  record("pacienteNew", pacNew);
  pacNew.close();
  out.lists = { paciente: pac.list.seen, psicologo: psi.list.seen, nuevo: nuevo.list.seen };
  out.badges = { paciente: pac.badge.seen, psicologo: psi.badge.seen };
  out.errors = { paciente: pac.browser.errors, psicologo: psi.browser.errors, nuevo: nuevo.browser.errors };
  out.users = { paciente: pac.user, psicologo: psi.user, nuevo: nuevo.user };
  out.cid = cid;
  out.typed = typed;
  out.reply = reply;
  await finish();
} catch (error) {
  await finish(error);
}
