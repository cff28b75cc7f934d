"""Webhook ids seen by the service, kept for LiveKit's retry window (deduplication across
every session a webhook reaches)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("webhook_id", sa.String(200), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_expires_at", "webhook_deliveries", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_expires_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
