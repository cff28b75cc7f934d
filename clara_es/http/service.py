"""Everything one HTTP process holds: the application, the views, the live feeds, the
webhook receiver, the token check, the metrics; opened and closed as one."""

from __future__ import annotations

from dataclasses import dataclass

from clara_es.adapters.livekit.webhooks import LiveKitWebhooks
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import BackoffPolicy, Clock, SystemClock
from clara_es.http.auth import Authenticator
from clara_es.http.metrics import Metrics
from clara_es.http.queries import Reads
from clara_es.http.sse import Changes
from projections import db as views_db
from projections.supervisor import Supervisor


@dataclass
class Options:
    # Seconds between re-reads of a live feed's stream (catches other processes' appends).
    feed_poll: float = 1.0
    # Seconds between polls of the event log by the view runners (SQLite; PostgreSQL listens).
    view_poll: float = 0.1
    # /readyz fails while a view is more than this many events behind the log.
    max_lag: int = 1000
    # Keep the views live in this process (off when another process runs the projections).
    follow_views: bool = True


class Service:
    def __init__(
        self,
        store: Store,
        *,
        api_key: str,
        api_secret: str,
        clock: Clock | None = None,
        policy: BackoffPolicy | None = None,
        options: Options | None = None,
    ) -> None:
        self.store = store
        self.options = options or Options()
        self.clock: Clock = clock or SystemClock()
        self.authenticator = Authenticator(api_key, api_secret)
        if store.sqlite_path is not None:
            store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self.app = VoiceSessions(store.eventsourcing_env(), clock=self.clock, policy=policy)
        views_db.upgrade(store)
        self.views = views_db.engine(store, pool_pre_ping=True)
        self.reads = Reads(self.app, self.views, self.clock)
        self.webhooks = LiveKitWebhooks(self.app, api_key, api_secret)
        self.changes = Changes()
        self.metrics = Metrics(self)
        self.supervisor: Supervisor | None = None

    def start(self) -> Service:
        if self.options.follow_views and self.supervisor is None:
            self.supervisor = Supervisor(self.store, poll_interval=self.options.view_poll).start()
        return self

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the views have applied everything appended so far."""
        if self.supervisor is not None:
            self.supervisor.wait_for(self.app.recorder.max_notification_id() or 0, timeout)

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        self.app.close()
        self.views.dispose()
