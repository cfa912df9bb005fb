// One conversation's messages as data: deduplicated by id, seq and clientId,
// ordered by seq, with the own messages that are still on their way.

let created = 0;

/** A new clientId for an own message: random, so a retry can never collide with another message. */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Order: confirmed messages by seq, then pending ones in the order they were written. */
export function compareEntries(a, b) {
  if (a.seq !== null && b.seq !== null) return a.seq - b.seq;
  if (a.seq !== null) return -1;
  if (b.seq !== null) return 1;
  return a.order - b.order;
}

export class Timeline {
  constructor(myId) {
    this.myId = myId;
    this.bySeq = new Map();
    this.byClientId = new Map();
    this.pending = new Set();
    // Every seq up to syncedSeq is here (or older than the oldest page loaded):
    // catch-up asks for what comes after it, so a gap is never skipped.
    this.syncedSeq = 0;
    this.oldestSeq = null;
    this.newestSeq = 0;
  }

  /** Take in a message from the server; {entry, added} (added false for one already here). */
  receive(m) {
    const own = m.remitenteId === this.myId;
    let entry = this.bySeq.get(m.seq);
    if (!entry && own && m.clientId) entry = this.byClientId.get(m.clientId);
    const added = !entry;
    if (!entry) entry = { own, order: created++, clientId: m.clientId || null };
    const wasRead = entry.state === "read";
    // A page fetched before an edit or a deletion may arrive after it: never go back.
    const version = m.version ?? 1;
    const current = !entry.id || m.eliminado || (!entry.eliminado && version >= (entry.version ?? 1));
    Object.assign(entry, { id: m.id, seq: m.seq, createdAt: m.createdAt });
    if (current) {
      Object.assign(entry, { contenido: m.contenido, version, editadoAt: m.editadoAt ?? null, eliminado: Boolean(m.eliminado) });
    }
    entry.state = own ? (m.leido || wasRead ? "read" : "sent") : "received";
    entry.error = null;
    this.pending.delete(entry);
    this.bySeq.set(m.seq, entry);
    if (own && m.clientId) this.byClientId.set(m.clientId, entry);
    this.oldestSeq = this.oldestSeq === null ? m.seq : Math.min(this.oldestSeq, m.seq);
    this.newestSeq = Math.max(this.newestSeq, m.seq);
    this.advance();
    return { entry, added };
  }

  /** The first page loaded: nothing older than it needs catching up. */
  startAt(messages) {
    if (messages.length) this.syncedSeq = Math.max(this.syncedSeq, messages[0].seq - 1);
    return messages.map((m) => this.receive(m));
  }

  advance() {
    while (this.bySeq.has(this.syncedSeq + 1)) this.syncedSeq += 1;
  }

  /** Whether a message past a missing seq arrived (so a catch-up is due). */
  get hasGap() {
    return this.newestSeq > this.syncedSeq;
  }

  /** A new own message, shown at once and confirmed later by the ack. */
  addPending(contenido) {
    const clientId = newClientId();
    const entry = {
      own: true, order: created++, clientId, contenido, seq: null, id: null,
      createdAt: new Date().toISOString(), state: "pending", attempts: 0, inFlight: false,
    };
    this.byClientId.set(clientId, entry);
    this.pending.add(entry);
    return entry;
  }

  /** The other member read up to hastaSeq: own messages up to it become read; the changed ones. */
  readUpTo(hastaSeq) {
    const changed = [];
    for (const entry of this.bySeq.values()) {
      if (entry.own && entry.seq <= hastaSeq && entry.state !== "read") {
        entry.state = "read";
        changed.push(entry);
      }
    }
    return changed;
  }

  /** The highest seq written by the other member. */
  get lastOtherSeq() {
    let last = 0;
    for (const entry of this.bySeq.values()) if (!entry.own) last = Math.max(last, entry.seq);
    return last;
  }

  /** How many messages of one text there are (tests check nothing is doubled). */
  get size() {
    return this.bySeq.size + this.pending.size;
  }
}
