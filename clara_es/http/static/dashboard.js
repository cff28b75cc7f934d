// The dashboard: stats and sessions from the views, refreshed every few seconds.
"use strict";

const $ = (id) => document.getElementById(id);

function rows(table, header, items, cells, onClick) {
  table.replaceChildren();
  const head = table.insertRow();
  header.forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
  items.forEach((item) => {
    const row = table.insertRow();
    cells(item).forEach((value) => { row.insertCell().textContent = value ?? "-"; });
    if (onClick) { row.className = "clickable"; row.addEventListener("click", () => onClick(item)); }
  });
}

function chart(svg, ttr) {
  const bars = [["p50", ttr.p50], ["p95", ttr.p95], ["max", ttr.max]];
  const top = Math.max(1, ...bars.map(([, v]) => v || 0));
  svg.replaceChildren();
  bars.forEach(([label, value], i) => {
    const height = Math.round(90 * (value || 0) / top);
    const x = 20 + i * 75;
    svg.insertAdjacentHTML("beforeend",
      `<rect x="${x}" y="${115 - height}" width="50" height="${height}" fill="#4a7bd0"></rect>` +
      `<text x="${x + 25}" y="130" text-anchor="middle" font-size="12">${label}</text>` +
      `<text x="${x + 25}" y="${110 - height}" text-anchor="middle" font-size="11">` +
      `${value ?? "-"}</text>`);
  });
}

async function timeline(session) {
  $("timeline-title").textContent = "Timeline of " + session.session_id;
  const events = await api("GET", "/api/sessions/" + session.session_id + "/history");
  rows($("timeline"), ["time", "v", "event", "actor", "details"], events, (e) => [
    e.occurred_at, e.version, e.type, e.actor, JSON.stringify(e.details),
  ]);
}

async function refresh() {
  try {
    const [stats, sessions] = await Promise.all([
      api("GET", "/api/stats"), api("GET", "/api/sessions?limit=100"),
    ]);
    $("total").textContent = stats.sessions;
    rows($("by-state"), ["state", "sessions"], Object.entries(stats.sessions_by_state), (e) => e);
    $("rate").textContent = stats.recovery_rate === null ? "-" :
      (100 * stats.recovery_rate).toFixed(1) + " %";
    $("recoveries").textContent = stats.recoveries + " recovered, " + stats.failures + " failed";
    chart($("ttr"), stats.time_to_recover_ms);
    rows($("rooms"), ["room", "failures"], stats.failures_per_room, (r) => [r.room, r.failures]);
    rows($("orphans"), ["session", "room", "state", "since"], stats.orphans.sessions,
      (o) => [o.session_id, o.room, o.state, o.final_at]);
    rows($("sessions"), ["session", "room", "participant", "state", "outages", "updated"],
      sessions, (s) => [s.session_id.slice(0, 8), s.room, s.participant, s.connection_state,
        s.counts.outages, s.updated_at], timeline);
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = e.message;
  }
}

if (pageToken()) {
  refresh();
  setInterval(refresh, 5000);
} else {
  $("error").textContent = noTokenHelp("read");
}
