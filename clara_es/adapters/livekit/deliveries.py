"""Webhook ids the service has applied, for LiveKit's retry window: a redelivered webhook
changes nothing, whichever sessions it would reach now (a re-sent `room_finished` must not
end a newer session of the same room). The table is Alembic's (0003_webhook_deliveries)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from clara_es.domain import Clock

DEFAULT_WINDOW = timedelta(hours=24)

deliveries = sa.Table(
    "webhook_deliveries", sa.MetaData(),
    sa.Column("webhook_id", sa.String(200), primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


class WebhookDeliveries:
    """Which webhook ids were applied within the window, on the views' database."""

    def __init__(self, engine: sa.Engine, clock: Clock, window: timedelta = DEFAULT_WINDOW):
        self.engine = engine
        self.clock = clock
        self.window = window

    def seen(self, webhook_id: str) -> datetime | None:
        """When `webhook_id` was applied, if it was within the window."""
        d = deliveries.c
        stmt = sa.select(d.received_at).where(
            d.webhook_id == webhook_id, d.expires_at > self.clock.now()
        )
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def record(self, webhook_id: str, event: str) -> None:
        """Remember `webhook_id` for the window (and forget ids whose window has passed)."""
        now = self.clock.now()
        d = deliveries.c
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(deliveries).where(d.expires_at <= now))
                conn.execute(sa.insert(deliveries).values(
                    webhook_id=webhook_id, event=event, received_at=now,
                    expires_at=now + self.window,
                ))
        except sa.exc.IntegrityError:
            pass  # the same delivery, applied at the same moment by another request
