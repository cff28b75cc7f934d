// The rules of one session as a client knows it, for clara-es-client.js: the same rules as the
// service's (clara_es/domain: connection.py, policy.py, status.py, schedule.py), written again
// for the facts a client reports. tests/e2e/test_browser_client.py runs random sequences of
// facts through both and compares every UI state.

export const FAILURE_TEXT =
  "Connection lost. Please check your internet and try starting a new session.";
export const START_ENABLED = new Set(["idle", "failed", "ended"]);
export const DEFAULT_POLICY = Object.freeze({
  base_delay_ms: 1000, factor: 2.0, max_attempts: 5, cap_ms: null, jitter: 0.0, seed: 0,
});

export class InvalidTransition extends Error {}

export function delayMs(policy, attempt) {
  if (!(attempt >= 1 && attempt <= policy.max_attempts)) {
    throw new RangeError(`attempt must be between 1 and ${policy.max_attempts}, got ${attempt}`);
  }
  const delay = policy.base_delay_ms * policy.factor ** (attempt - 1);
  return Math.round(policy.cap_ms == null ? delay : Math.min(delay, policy.cap_ms));
}

export function statusText(state, attempt, maxAttempts) {
  switch (state) {
    case "idle": return "Not connected";
    case "connecting": return "Connecting...";
    case "connected": return "Connected";
    case "reconnecting":
      return attempt ? `Reconnecting... (attempt ${attempt} of ${maxAttempts})` : "Reconnecting...";
    case "failed": return FAILURE_TEXT;
    case "ended": return "Session ended";
  }
  throw new Error(`unknown connection state ${state}`);
}

// One session as the client knows it: what each fact it reports does (connection.py).
// `decide` answers the facts recorded, or ["ignored: why"]; it throws InvalidTransition for a
// fact the session refuses (nothing is kept, as the service answers 409).
export class LocalSession {
  constructor(started) {
    this.id = started.session_id;
    this.room = started.room;
    this.participant = started.participant;
    this.policy = { ...DEFAULT_POLICY, ...started.policy };
    if (this.policy.jitter) throw new Error("the browser client runs policies without jitter");
    this.state = "idle";
    this.attempt = 0;
    this.inFlight = false;
    this.nextRetryAt = null; // ms since the epoch
    this.updatedAt = Date.parse(started.started_at);
    this.version = 1;
  }

  get isFinal() { return this.state === "failed" || this.state === "ended"; }

  decide(type, body, at) {
    at = Math.max(at, this.updatedAt); // a stream's times only go forward
    const facts = this._rule(type, body || {}, at);
    this.updatedAt = at;
    this.version += facts.length;
    return facts;
  }

  _rule(type, body, at) {
    const s = this.state;
    switch (type) {
      case "connect":
        if (this.isFinal) {
          throw new InvalidTransition(
            `session is ${s}: start a new session instead of reconnecting this one`);
        }
        return s === "idle" ? this._set("Connecting", { state: "connecting" })
          : [`ignored: connect while ${s}`];
      case "connected":
        if (s === "idle" || s === "connecting") return this._set("Connected", { state: "connected" });
        if (s === "reconnecting") {
          throw new InvalidTransition("session is reconnecting: report 'reconnected' instead");
        }
        return [`ignored: connected while ${s}`];
      case "resume-started":
        this._requireStarted(type);
        return s === "connected"
          ? this._set("ResumeStarted", { state: "reconnecting", attempt: 0, nextRetryAt: null })
          : [`ignored: the room started resuming while ${s}`];
      case "disconnected":
        this._requireStarted(type);
        if (s === "connected" || s === "connecting" || (s === "reconnecting" && !this.attempt)) {
          return [...this._set("Disconnected", { state: "reconnecting" }), ...this._schedule(1, at)];
        }
        return [`ignored: disconnected while ${s}${s === "reconnecting" ? " (one outage, one schedule)" : ""}`];
      case "attempt-started":
        if (s !== "reconnecting") return [`ignored: attempt ${body.attempt} fired while ${s}`];
        if (body.attempt !== this.attempt) return [`ignored: stale timer (attempt ${body.attempt})`];
        if (this.inFlight) return [`ignored: attempt ${body.attempt} is already in flight`];
        return this._set("ReconnectAttempted", { inFlight: true, nextRetryAt: null });
      case "attempt-failed": {
        if (s !== "reconnecting") return [`ignored: attempt ${body.attempt} failed while ${s}`];
        if (body.attempt !== this.attempt) return [`ignored: stale failure (attempt ${body.attempt})`];
        const failed = this._set("ReconnectAttemptFailed", { inFlight: false });
        if (body.attempt >= this.policy.max_attempts) {
          return [...failed, ...this._set("Failed", { state: "failed", nextRetryAt: null })];
        }
        return [...failed, ...this._schedule(body.attempt + 1, at)];
      }
      case "reconnected":
        this._requireStarted(type);
        return s === "reconnecting"
          ? this._set("Reconnected", { state: "connected", attempt: 0, inFlight: false, nextRetryAt: null })
          : [`ignored: reconnected while ${s}`];
      case "end":
        return this.isFinal ? [`ignored: end after the session was ${s}`]
          : this._set("SessionEnded", { state: "ended", inFlight: false, nextRetryAt: null });
    }
    throw new InvalidTransition(`${type} is not something a client reports`);
  }

  _requireStarted(type) {
    if (this.state === "idle") throw new InvalidTransition(`${type}: the session has not connected yet`);
  }

  _set(fact, changes) {
    Object.assign(this, changes);
    return [fact];
  }

  _schedule(attempt, at) {
    return this._set("ReconnectScheduled",
      { attempt, inFlight: false, nextRetryAt: at + delayMs(this.policy, attempt) });
  }

  // The attempt the schedule calls for next, or null (schedule.py's due_attempt).
  dueAttempt() {
    if (this.state !== "reconnecting" || !this.attempt || this.nextRetryAt === null) return null;
    return { attempt: this.attempt, dueAt: this.nextRetryAt };
  }

  // The UI state, in the shape the service answers (UIState).
  uiState() {
    return {
      session_id: this.id, room: this.room, participant: this.participant,
      connection_state: this.state,
      status_text: statusText(this.state, this.attempt, this.policy.max_attempts),
      start_enabled: START_ENABLED.has(this.state),
      attempt: this.attempt, max_attempts: this.policy.max_attempts,
      next_retry_at: this.nextRetryAt === null ? null : new Date(this.nextRetryAt).toISOString(),
      updated_at: new Date(this.updatedAt).toISOString(), version: this.version,
    };
  }
}
