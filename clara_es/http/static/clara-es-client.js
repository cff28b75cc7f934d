// clara-es in the browser (or Electron): the reconnect schedule and the status text decided
// locally, every fact kept in an outbox (localStorage) and delivered in order through
// POST /api/sessions/{id}/signals whenever the service answers.
//
//   import { ClaraClient } from "/static/clara-es-client.js";
//   const client = await ClaraClient.start({ token, room, participant,
//     reconnect: async (attempt) => { try { await room.connect(url, jwt); return null; }
//                                     catch (e) { return String(e.message || e); } } });
//   client.onChange((state) => render(state));   // state.status_text, state.start_enabled
//   client.connect(); client.connected();
//   client.disconnected("network");   // "Reconnecting... (attempt 1 of 5)"; 1, 2, 4, 8, 16 s
//   ...after a reload: ClaraClient.resume({ token, sessionId, reconnect })
//
// The rules are the service's, written again for the facts a client reports (clara-es-rules.js,
// re-exported here; an app that copies this file copies that one beside it). Every fact keeps
// when it happened (`occurred_at`) and an idempotency key, so a batch sent twice (a lost answer,
// a reload in the middle of a flush) is recorded once.

import { DEFAULT_POLICY, LocalSession } from "./clara-es-rules.js";

export {
  DEFAULT_POLICY, FAILURE_TEXT, InvalidTransition, LocalSession, START_ENABLED, delayMs, statusText,
} from "./clara-es-rules.js";
export const BATCH = 500; // signals per request, as the endpoint takes at most
const PREFIX = "clara-es:";

// ---- the outbox -----------------------------------------------------------------------------

// Every fact of a session, in order, in localStorage (written before anything is sent, so a
// reload or a crash keeps it). Delivered facts stay too: the state is rebuilt from them.
export class Outbox {
  constructor(storage = globalThis.localStorage) { this.storage = storage; }

  addSession(started) {
    this._forgetDelivered();
    this.storage.setItem(PREFIX + "session:" + started.session_id, JSON.stringify(started));
    this.storage.setItem(PREFIX + "latest", started.session_id);
  }

  // Earlier sessions whose every fact the service has answered for are not kept.
  _forgetDelivered() {
    const ids = [];
    for (let i = 0; i < this.storage.length; i++) {
      const key = this.storage.key(i);
      if (key && key.startsWith(PREFIX + "session:")) ids.push(key.slice(PREFIX.length + 8));
    }
    for (const id of ids) {
      if (this.pending(id).length === 0) {
        this.storage.removeItem(PREFIX + "session:" + id);
        this.storage.removeItem(PREFIX + "facts:" + id);
      }
    }
  }

  session(sessionId) {
    const id = sessionId || this.storage.getItem(PREFIX + "latest");
    const text = id && this.storage.getItem(PREFIX + "session:" + id);
    return text ? JSON.parse(text) : null;
  }

  facts(sessionId) {
    return JSON.parse(this.storage.getItem(PREFIX + "facts:" + sessionId) || "[]");
  }

  pending(sessionId) { return this.facts(sessionId).filter((f) => f.delivered_status === null); }

  append(sessionId, fact) {
    const facts = this.facts(sessionId);
    facts.push({ ...fact, seq: facts.length + 1, delivered_status: null });
    this._write(sessionId, facts);
  }

  delivered(sessionId, statusByKey) {
    const facts = this.facts(sessionId);
    for (const f of facts) {
      if (statusByKey.has(f.idempotency_key)) f.delivered_status = statusByKey.get(f.idempotency_key);
    }
    this._write(sessionId, facts);
  }

  _write(sessionId, facts) {
    this.storage.setItem(PREFIX + "facts:" + sessionId, JSON.stringify(facts));
  }
}

function newKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- the client -----------------------------------------------------------------------------

export class ClaraClient {
  // options: token, baseUrl ("" = this page's origin), storage (localStorage), reconnect
  // (async (attempt) => null | error text: the room's connect; given, the client follows the
  // schedule by itself), retryEveryMs (2000: retry delivery while facts are pending), now,
  // fetch (for tests and other runtimes).
  constructor(options, started) {
    this.token = options.token;
    this.baseUrl = options.baseUrl || "";
    this.reconnect = options.reconnect || null;
    this.now = options.now || (() => Date.now());
    this.fetch = options.fetch || ((...args) => globalThis.fetch(...args));
    this.retryEveryMs = options.retryEveryMs ?? 2000;
    this.outbox = new Outbox(options.storage);
    this.session = new LocalSession(started);
    this.sessionId = started.session_id;
    this.serviceState = null; // the last state the service answered
    this.lastError = null; // why the last delivery did not go through, or null
    this.listeners = [];
    this._flushing = null;
    this._following = false;
    this._timer = null;
    this._closed = false;
    this._online = () => this.flush();
    if (globalThis.addEventListener) globalThis.addEventListener("online", this._online);
  }

  // Start Session: the service must answer this once (it names the session).
  static async start(options) {
    const policy = { ...DEFAULT_POLICY, ...(options.policy || {}) };
    const startedAt = new Date((options.now || Date.now)()).toISOString();
    const answer = await post(options, "/api/sessions",
      { room: options.room, participant: options.participant, policy }, newKey());
    const started = { session_id: answer.session_id, room: options.room,
      participant: options.participant, policy, started_at: startedAt };
    new Outbox(options.storage).addSession(started);
    return new ClaraClient(options, started);
  }

  // After a reload: the session (options.sessionId, else the latest) rebuilt from its outbox,
  // what was not delivered sent now or when the service answers; null if none is kept.
  static resume(options) {
    const started = new Outbox(options.storage).session(options.sessionId);
    if (!started) return null;
    const client = new ClaraClient(options, started);
    for (const f of client.outbox.facts(started.session_id)) {
      client.session.decide(f.type, f.body, Date.parse(f.occurred_at));
    }
    const s = client.session;
    if (s.state === "reconnecting" && s.inFlight) {
      // The page that was connecting is gone: that attempt failed, the schedule goes on.
      client.report("attempt-failed", { attempt: s.attempt, error: "interrupted by a reload" });
    } else {
      client._afterReport();
    }
    return client;
  }

  close() {
    this._closed = true;
    if (globalThis.removeEventListener) globalThis.removeEventListener("online", this._online);
    clearTimeout(this._timer);
    this._timer = null;
  }

  // ---- what the screen shows ----

  get state() { return { ...this.session.uiState(), pending: this.pending().length }; }

  pending() { return this.outbox.pending(this.sessionId); }

  onChange(listener) {
    this.listeners.push(listener);
    return () => { this.listeners = this.listeners.filter((l) => l !== listener); };
  }

  _changed() {
    const state = this.state;
    for (const listener of this.listeners) listener(state);
  }

  // ---- reporting ----

  // Decide a fact locally (now), keep it, show it, send what is pending. Answers the facts
  // the session recorded (["ignored: ..."] when it ignored the fact).
  report(type, body = {}) {
    const facts = this.session.decide(type, body, this.now());
    this.outbox.append(this.sessionId, { type, body,
      occurred_at: new Date(this.session.updatedAt).toISOString(), idempotency_key: newKey() });
    this._afterReport();
    return facts;
  }

  connect() { return this.report("connect"); }
  connected() { return this.report("connected"); }
  resumeStarted() { return this.report("resume-started"); }
  disconnected(reason = "unknown") { return this.report("disconnected", { reason }); }
  reconnected() { return this.report("reconnected"); }
  end(reason = "user") { return this.report("end", { reason }); }

  _afterReport() {
    this._changed();
    this.flush();
    if (this.reconnect && !this._following && this.session.dueAttempt()) {
      this.follow(this.reconnect);
    }
  }

  // Follow the reconnect schedule until it calls for no attempt: wait until each attempt is
  // due, start it, connect, report how it ended (schedule.py's follow).
  async follow(connect) {
    if (this._following) return this.state;
    this._following = true;
    try {
      let due;
      while (!this._closed && (due = this.session.dueAttempt()) !== null) {
        // A timer may fire a millisecond early by the wall clock: never start before due.
        while (!this._closed && this.now() < due.dueAt) {
          await new Promise((resolve) => setTimeout(resolve, due.dueAt - this.now()));
        }
        if (this._closed) break;
        const now = this.session.dueAttempt();
        if (now === null || now.attempt !== due.attempt) continue; // something else happened
        if (!this.report("attempt-started", { attempt: due.attempt }).includes("ReconnectAttempted")) {
          continue;
        }
        let error;
        try {
          error = await connect(due.attempt);
        } catch (e) {
          error = String((e && e.message) || e || "connect failed");
        }
        if (error == null) this.report("reconnected");
        else this.report("attempt-failed", { attempt: due.attempt, error: String(error) });
      }
    } finally {
      this._following = false;
    }
    return this.state;
  }

  // ---- delivery ----

  // Send every pending fact, oldest first, in batches. True once none is pending; false while
  // the service does not answer or refuses the batch (the facts stay; `lastError` says why).
  flush() {
    if (!this._flushing) {
      this._flushing = this._flush().finally(() => {
        this._flushing = null;
        this._retryLater();
      });
    }
    return this._flushing;
  }

  async _flush() {
    let pending;
    while ((pending = this.pending().slice(0, BATCH)).length) {
      const signals = pending.map((f) => ({ type: f.type, ...f.body, occurred_at: f.occurred_at,
        idempotency_key: f.idempotency_key }));
      let answer;
      try {
        answer = await post(this, `/api/sessions/${encodeURIComponent(this.sessionId)}/signals`,
          { sent_at: new Date(this.now()).toISOString(), signals });
      } catch (e) {
        this.lastError = e.message;
        return false;
      }
      this.lastError = null;
      this.outbox.delivered(this.sessionId,
        new Map(answer.results.map((r, i) => [pending[i].idempotency_key, r.status])));
      this.serviceState = answer.state;
      this._changed();
    }
    return true;
  }

  _retryLater() {
    clearTimeout(this._timer);
    this._timer = null;
    if (!this._closed && this.pending().length && this.retryEveryMs > 0) {
      this._timer = setTimeout(() => this.flush(), this.retryEveryMs);
    }
  }
}

// One POST to the service: its JSON answer, or an Error saying why not (the network, or the
// service's problem detail). `options`: token, baseUrl, fetch.
async function post(options, path, body, key) {
  const headers = { "Authorization": "Bearer " + options.token, "Content-Type": "application/json" };
  if (key) headers["Idempotency-Key"] = key;
  const send = options.fetch || ((...args) => globalThis.fetch(...args));
  const response = await send((options.baseUrl || "") + path,
    { method: "POST", headers, body: JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON: say the status */ }
  if (!response.ok) throw new Error((data && data.detail) || `the service answered ${response.status}`);
  return data;
}
