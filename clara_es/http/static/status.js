// The status light of one session, driven by its live feed (Server-Sent Events).
"use strict";

const light = document.getElementById("light");
const text = document.getElementById("status-text");
const details = document.getElementById("details");
const button = document.getElementById("start");
const errorLine = document.getElementById("error");
let feed = null;
let shown = { session: null, version: -1 };

function render(state) {
  // A command's answer and the feed can arrive in either order: never show an older version.
  if (state.session_id === shown.session && state.version < shown.version) return;
  shown = { session: state.session_id, version: state.version };
  light.className = "light " + state.connection_state;
  text.textContent = state.status_text;
  button.disabled = !state.start_enabled;
  const retry = state.next_retry_at ? " · next retry at " + state.next_retry_at : "";
  details.textContent = "room " + state.room + " · " + state.participant + " · version " +
    state.version + retry;
  document.body.dataset.version = state.version;
}

function follow(sessionId) {
  if (feed) feed.close();
  const url = "/api/sessions/" + encodeURIComponent(sessionId) + "/live?access_token=" +
    encodeURIComponent(pageToken());
  // EventSource reconnects by itself and sends Last-Event-ID: the feed resumes after it.
  feed = new EventSource(url);
  feed.addEventListener("state", (event) => render(JSON.parse(event.data)));
  feed.onopen = () => { errorLine.textContent = ""; };
  feed.onerror = () => { errorLine.textContent = "Live feed interrupted, reconnecting..."; };
}

button.addEventListener("click", async () => {
  const claims = tokenClaims(pageToken() || "");
  button.disabled = true;
  try {
    const started = await api("POST", "/api/sessions",
      { room: (claims.video || {}).room, participant: claims.sub });
    const params = new URLSearchParams(location.search);
    params.set("session", started.session_id);
    history.replaceState(null, "", "?" + params + location.hash);
    follow(started.session_id);
    render(await api("POST", "/api/sessions/" + started.session_id + "/connect"));
  } catch (e) {
    errorLine.textContent = e.message;
    button.disabled = false;
  }
});

const sessionId = new URLSearchParams(location.search).get("session");
if (!pageToken()) errorLine.textContent = noTokenHelp("client");
else if (sessionId) follow(sessionId);
