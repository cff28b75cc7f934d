"""The client's outbox survives a SIGKILL of the client process."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from uuid import UUID

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.client import Client, InProcessTransport
from clara_es.domain import ConnectionState, SystemClock

CLIENT = """
import os, signal, sys
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.client import Client, InProcessTransport
from clara_es.domain import SystemClock

store, outbox = sys.argv[1:3]
link = InProcessTransport(VoiceSessions(Store.sqlite(store).eventsourcing_env()))
client = Client.start(link, outbox, SystemClock(), "room-1", "alice")
client.connect()
client.connected()
link.reachable = False  # the network drops: the service hears nothing from here on
client.disconnected("wifi off")
print(client.session_id, client.state.status_text, sep="|", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_client_delivers_its_outbox_when_it_starts_again(tmp_path: Path) -> None:
    store, outbox = tmp_path / "service.db", tmp_path / "outbox.db"
    run = subprocess.run([sys.executable, "-c", CLIENT, str(store), str(outbox)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    session_id, shown = run.stdout.strip().split("|")
    assert shown == "Reconnecting... (attempt 1 of 5)"

    app = VoiceSessions(Store.sqlite(store).eventsourcing_env())
    sid = UUID(session_id)
    assert app.status(sid).connection_state == ConnectionState.CONNECTED  # it heard nothing

    client = Client.resume(InProcessTransport(app), outbox, SystemClock())
    assert client.state.status_text == "Reconnecting... (attempt 1 of 5)"
    assert client.pending() == []
    assert app.status(sid).status_text == "Reconnecting... (attempt 1 of 5)"
    dropped = [e for e in session_history(app, sid) if e.type == "Disconnected"]
    assert len(dropped) == 1 and dropped[0].cause.get("idempotency_key")
    client.close()
    app.close()
