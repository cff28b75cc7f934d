"""A load generator that is not the bottleneck: wrk (Debian's `wrk` package) when it is on
the PATH, else a small asyncio httpx loop (said in the figures: `generator`).

Each run keeps `connections` requests in flight for `seconds` (closed loop, keep-alive) and
answers requests/s, p50 and p99 latency, and how many answers were not 2xx.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str | None = None


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "httpx"


def run(
    url: str, plans: Sequence[Sequence[Request]], seconds: float,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """One connection per plan; each connection sends its plan's requests in order, round
    and round (so a session's commands keep their order)."""
    if generator() == "wrk":
        return _wrk(url, plans, seconds, headers or {})
    return asyncio.run(_httpx(url, plans, seconds, headers or {}))


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def _script(plans: Sequence[Sequence[Request]], headers: dict[str, str]) -> str:
    rows = ",\n".join(
        "{" + ", ".join(
            "{" + f"{_lua_string(r.method)}, {_lua_string(r.path)}, "
            f"{_lua_string(r.body) if r.body is not None else 'nil'}" + "}" for r in plan
        ) + "}"
        for plan in plans
    )
    header_lines = "\n".join(
        f"headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    return f"""
local plans = {{
{rows}
}}
headers = {{}}
{header_lines}
local count = 0
function setup(thread)
  count = count + 1
  thread:set("plan_index", count)
end
local i = 0
request = function()
  local plan = plans[plan_index]
  local r = plan[(i % #plan) + 1]
  i = i + 1
  local h = headers
  if r[3] ~= nil then
    h = {{}}
    for k, v in pairs(headers) do h[k] = v end
    h["Content-Type"] = "application/json"
  end
  return wrk.format(r[1], r[2], h, r[3])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "mean_us": %f}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def _wrk(
    url: str, plans: Sequence[Sequence[Request]], seconds: float, headers: dict[str, str]
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_script(plans, headers))
        script.flush()
        n = len(plans)
        out = subprocess.run(
            ["wrk", f"-t{n}", f"-c{n}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
             "-s", script.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    return {
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
        "non2xx": figures["non2xx"], "socket_errors": figures["socket_errors"],
        "requests": figures["requests"],
    }


async def _httpx(
    url: str, plans: Sequence[Sequence[Request]], seconds: float, headers: dict[str, str]
) -> dict[str, float]:
    latencies: list[float] = []
    non2xx = 0
    limits = httpx.Limits(max_connections=len(plans), max_keepalive_connections=len(plans))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30,
                                 headers=headers) as http:
        stop = time.perf_counter() + seconds

        async def loop(plan: Sequence[Request]) -> None:
            nonlocal non2xx
            i = 0
            while time.perf_counter() < stop:
                r = plan[i % len(plan)]
                i += 1
                started = time.perf_counter()
                answer = await http.request(
                    r.method, r.path, content=r.body,
                    headers={"Content-Type": "application/json"} if r.body else None)
                latencies.append(time.perf_counter() - started)
                non2xx += not 200 <= answer.status_code < 300

        start = time.perf_counter()
        await asyncio.gather(*(loop(p) for p in plans))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed, "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "non2xx": non2xx,
        "socket_errors": 0, "requests": len(latencies),
    }
