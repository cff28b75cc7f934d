"""An agent process for the end-to-end tests: a real livekit-agents AgentSession (fake STT,
LLM and TTS, no room) attached to one session of a clara-es service over HTTP.

    python -m tests.support.agent_process BASE_URL TOKEN SESSION_ID AGENT_ID

Prints `ready` once attached, one `restarted <request id>` line per restart it performed,
and exits 0 after the service's CleanupRequested stopped its session (or on SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from uuid import UUID

from livekit.agents import Agent, AgentSession

from clara_es.agents import HttpLink, attach

from .agent_plugins import FakeLLM, FakeSTT, FakeTTS


async def main(base_url: str, token: str, session_id: UUID, agent_id: str) -> None:
    session = AgentSession(stt=FakeSTT(), llm=FakeLLM(), tts=FakeTTS())
    await session.start(Agent(instructions="You are a test."))
    link = HttpLink(base_url, token, session_id)
    clara = await attach(session, link, agent_id=agent_id)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)

    async def report_restarts() -> None:
        reported = 0
        while True:
            for request_id, error in clara.restarts[reported:]:
                print(f"restarted {request_id} {error or 'ok'}", flush=True)
            reported = len(clara.restarts)
            await asyncio.sleep(0.05)

    reporter = asyncio.create_task(report_restarts())
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(clara.cleaned_up.wait())]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in (reporter, *pending):
        task.cancel()
    await clara.aclose()
    await session.aclose()
    await link.aclose()
    print("stopped", flush=True)


if __name__ == "__main__":
    url, bearer, session, agent = sys.argv[1:5]
    asyncio.run(main(url, bearer, UUID(session), agent))
