"""LiveKit webhooks per second, against the same commands called directly on the same store.

    python -m bench.webhooks [--sessions 500] [--json]

For each store (SQLite file; PostgreSQL if reachable), every session receives two signed
webhooks (participant_joined, then participant_left). A webhook is verified (JWT signature and
the body's sha256, with livekit-api), its session is looked up (RoomIndex), and it is recorded
once (WebhookReceived and the decision). The baseline, in the same process and on the same
store, is the two commands called directly (participant_joined, participant_left). Then every
webhook is delivered again, as LiveKit retries: verified, found already recorded, nothing appended.
"""

from __future__ import annotations

import base64
import hashlib
import time
from uuid import UUID

from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from bench.common import Report, arguments, backends, fresh_store
from clara_es.adapters.livekit import LiveKitWebhooks
from clara_es.application import VoiceSessions
from clara_es.domain import commands

KEY, SECRET = "APIbench", "a-benchmark-secret-of-at-least-32-characters"


def signed(kind: str, webhook_id: str, room: str, identity: str) -> tuple[str, str]:
    event = WebhookEvent(
        event=kind, id=webhook_id, room=models.Room(name=room),
        participant=models.ParticipantInfo(
            identity=identity, disconnect_reason=models.DisconnectReason.SIGNAL_CLOSE
        ),
    )
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return body, api.AccessToken(KEY, SECRET).with_sha256(digest).to_jwt()


def started(app: VoiceSessions, sessions: int, prefix: str) -> list[UUID]:
    ids = []
    for n in range(sessions):
        start = commands.StartSession(room=f"{prefix}-room-{n}", participant=f"user-{n}")
        session_id = app.handle(start).session_id
        app.handle(commands.Connect(), session_id)
        ids.append(session_id)
    return ids


def bench(env: dict[str, str], sessions: int) -> dict[str, float]:
    app = VoiceSessions(env)
    try:
        direct_ids = started(app, sessions, "direct")
        t = time.perf_counter()
        for session_id in direct_ids:
            app.handle(commands.ReportParticipantJoined(), session_id)
            app.handle(commands.ReportParticipantLeft(reason="SIGNAL_CLOSE"), session_id)
        direct = 2 * sessions / (time.perf_counter() - t)

        started(app, sessions, "hook")
        deliveries = [
            signed(kind, f"WH_{kind}_{n}", f"hook-room-{n}", f"user-{n}")
            for n in range(sessions)
            for kind in ("participant_joined", "participant_left")
        ]
        hooks = LiveKitWebhooks(app, KEY, SECRET)
        t = time.perf_counter()
        for body, token in deliveries:
            assert hooks.receive(body, token).applied
        webhooks = len(deliveries) / (time.perf_counter() - t)
        t = time.perf_counter()
        for body, token in deliveries:
            assert hooks.receive(body, token).duplicates
        retries = len(deliveries) / (time.perf_counter() - t)
    finally:
        app.close()
    return {"direct": direct, "webhooks": webhooks, "retries": retries}


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv, sessions=500)
    report = Report(
        "{store:8}  webhooks {webhooks_per_s:>6}/s"
        "  retried {retries_per_s:>6}/s"
        "  direct commands {direct_commands_per_s:>6}/s"
        "  ratio {ratio:.2f} (retries {retry_ratio:.2f})",
        args.json,
    )
    for backend in backends():
        with fresh_store(backend) as store:
            r = bench(store.eventsourcing_env(), args.sessions)
        report.add(
            store=backend, sessions=args.sessions,
            webhooks_per_s=round(r["webhooks"]), retries_per_s=round(r["retries"]),
            direct_commands_per_s=round(r["direct"]),
            ratio=round(r["webhooks"] / r["direct"], 2),
            retry_ratio=round(r["retries"] / r["direct"], 2),
        )
    report.finish()


if __name__ == "__main__":
    main()
