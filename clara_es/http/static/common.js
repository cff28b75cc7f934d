// Shared by the pages: the token (from #token=... or ?token=..., kept for the tab) and fetch.
"use strict";

function pageToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  const fromQuery = new URLSearchParams(location.search).get("token");
  const token = fromHash || fromQuery || sessionStorage.getItem("clara-es-token");
  if (token) sessionStorage.setItem("clara-es-token", token);
  return token;
}

function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (e) {
    return {};
  }
}

// What to do without a token, in plain words, for a page's error line.
function noTokenHelp(role) {
  return "This page needs a token. Print one with `clara-es token --role " + role +
    " --identity NAME" + (role === "read" ? "" : " --room ROOM") +
    "` on the server, then open this page again with #token=<the token> at the end of its address.";
}

async function api(method, path, body) {
  if (!pageToken()) throw new Error(noTokenHelp(location.pathname === "/dashboard" ? "read" : "client"));
  const response = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + pageToken(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}
