"""The HTTP baseline: a bare FastAPI app on the same uvicorn as `clara-es serve`.

    python -m bench.bare_app --port N [--workers W]

Two JSON endpoints shaped like serve's: a GET by session id (a status read) and a POST of a
small JSON body to a session (a command); both sync handlers, as serve's are, so both pay
the same thread-pool hop. Nothing else: no store, no token, no middleware.
"""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    reason: str | None = None
    attempt: int | None = None


class State(BaseModel):
    session_id: UUID
    version: int
    connection_state: str


@app.get("/bare/{session_id}")
def read(session_id: UUID) -> State:
    return State(session_id=session_id, version=3, connection_state="connected")


@app.post("/bare/{session_id}/{name}")
def command(session_id: UUID, name: str, body: Body | None = None) -> dict[str, Any]:
    return {"session_id": str(session_id), "name": name, "version": 4,
            "connection_state": "reconnecting"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run("bench.bare_app:app" if args.workers > 1 else app, host="127.0.0.1",
                port=args.port, workers=args.workers, log_config=None, log_level="warning")


if __name__ == "__main__":
    main()
