// The status light of one session. A session this page reports for (Start Session here, or
// kept in this browser's outbox) is decided locally by clara-es-client.js and shown at once,
// online or not; the live feed (Server-Sent Events) shows what the service knows, and is
// shown whenever nothing of ours is waiting to be delivered.
import { ClaraClient } from "/static/clara-es-client.js";

const light = document.getElementById("light");
const text = document.getElementById("status-text");
const details = document.getElementById("details");
const button = document.getElementById("start");
const errorLine = document.getElementById("error");
let feed = null;
let client = null; // the ClaraClient of the session shown, when this browser reports for it
let service = null; // the newest state the service answered or sent on the feed
// The app around the page may give the room's connect, `async (attempt) => null | error`:
// the client then follows the reconnect schedule by itself.
const reconnect = () => window.claraReconnect || null;

function heard(state) {
  // A command's answer and the feed can arrive in either order: never keep an older version.
  if (service && state.session_id === service.session_id && state.version < service.version) return;
  service = state;
  render();
}

function render() {
  const local = client && client.state;
  const state = local && (local.pending || !service) ? local : service;
  if (!state) return;
  light.className = "light " + state.connection_state;
  text.textContent = state.status_text;
  button.disabled = !state.start_enabled;
  const retry = state.next_retry_at ? " · next retry at " + state.next_retry_at : "";
  const waiting = local && local.pending ? " · " + local.pending + " not yet delivered" : "";
  details.textContent = "room " + state.room + " · " + state.participant + " · version " +
    state.version + retry + waiting;
  document.body.dataset.version = state.version;
  document.body.dataset.pending = local ? local.pending : 0;
  if (client && client.lastError && local.pending) errorLine.textContent = "Offline: kept here, sent when the service answers (" + client.lastError + ")";
  else if (errorLine.textContent.startsWith("Offline: ")) errorLine.textContent = "";
}

function follow(sessionId) {
  if (feed) feed.close();
  const url = "/api/sessions/" + encodeURIComponent(sessionId) + "/live?access_token=" +
    encodeURIComponent(pageToken());
  // EventSource reconnects by itself and sends Last-Event-ID: the feed resumes after it.
  feed = new EventSource(url);
  feed.addEventListener("state", (event) => heard(JSON.parse(event.data)));
  feed.onopen = () => { if (!errorLine.textContent.startsWith("Offline: ")) errorLine.textContent = ""; };
  feed.onerror = () => { if (!client || !client.pending().length) errorLine.textContent = "Live feed interrupted, reconnecting..."; };
}

function own(next) {
  if (client) client.close();
  client = next;
  window.claraClient = client; // for the app around the page (and the tests)
  client.onChange((state) => {
    if (client.serviceState) heard(client.serviceState);
    render();
  });
}

button.addEventListener("click", async () => {
  const claims = tokenClaims(pageToken() || "");
  button.disabled = true;
  try {
    if (!pageToken()) throw new Error(noTokenHelp("client"));
    own(await ClaraClient.start({ token: pageToken(), reconnect: reconnect(),
      room: (claims.video || {}).room, participant: claims.sub }));
    service = null;
    const params = new URLSearchParams(location.search);
    params.set("session", client.sessionId);
    history.replaceState(null, "", "?" + params + location.hash);
    follow(client.sessionId);
    client.connect();
  } catch (e) {
    errorLine.textContent = e.message;
    button.disabled = false;
  }
});

const sessionId = new URLSearchParams(location.search).get("session");
if (!pageToken()) errorLine.textContent = noTokenHelp("client");
else if (sessionId) {
  const kept = ClaraClient.resume({ token: pageToken(), sessionId, reconnect: reconnect() });
  if (kept) own(kept);
  render();
  follow(sessionId);
}
