"""Settings, read once from the environment (prefix CLARA_ES_) with pydantic-settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clara_es.domain.quality import POOR_WINDOW

DEFAULT_DATABASE_URL = "sqlite:///clara-es.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLARA_ES_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL

    # LiveKit's server API, for cleaning up rooms. With none set, cleanup is recorded as skipped.
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None

    # The process manager's timing.
    attempt_timeout_s: float = Field(10.0, gt=0, description="an attempt with no outcome fails")
    pipeline_restart_cap: int = Field(3, ge=1, description="restarts per poor-quality episode")
    pipeline_restart_timeout_s: float = Field(
        10.0, gt=0, description="a requested restart no agent reported by then has failed"
    )
    poor_window_s: float = Field(
        POOR_WINDOW.total_seconds(), gt=0, description="poor or lost this long is QualityPoor"
    )
    idle_timeout_s: float = Field(
        14400.0, gt=0, description="a session nobody reported anything on for this long ends"
    )
    cleanup_grace_s: float = Field(30.0, ge=0, description="wait after Failed before cleanup")
    cleanup_tries: int = Field(5, ge=1, description="RoomService calls before CleanupFailed")
    cleanup_retry_s: float = Field(0.5, gt=0, description="first wait between cleanup tries")
    poll_interval_s: float = Field(0.2, gt=0, description="how often `run` looks for new facts")
    lease_s: float = Field(30.0, gt=0, description="a claimed job's lease: then another takes it")
    timer_threads: int = Field(4, ge=1, le=64, description="threads firing due timers")
    effect_threads: int = Field(4, ge=1, le=64, description="threads running effects")
    ready_max_overdue_s: float = Field(
        30.0, gt=0, description="/readyz fails while a due job waits longer than this"
    )

    # Connections per pool (each process has a few pools, see README): size and overflow.
    pool_size: int = Field(2, ge=1, le=100, description="PostgreSQL connections kept per pool")
    pool_max_overflow: int = Field(4, ge=0, le=100, description="extra connections under load")

    # The HTTP service: the largest request body read (413 beyond, before the token is
    # checked), and how long a request waits on the store before it answers 503.
    http_max_body_bytes: int = Field(1_048_576, ge=1, description="largest request body")
    store_timeout_s: float = Field(5.0, gt=0, description="a request's wait on the store")
    webhook_window_s: float = Field(86400.0, gt=0, description="webhook ids remembered")
    # Pages of other origins allowed to call the API from a browser (an Electron renderer, a
    # web app on its own host): comma-separated origins, "*" for any; empty: same origin only.
    http_cors_origins: str = Field("", description="origins whose pages may call the API")

    # Log lines of the long-running commands: key=value (kv) or JSON lines.
    log_format: Literal["kv", "json"] = "kv"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.http_cors_origins.split(",") if o.strip())

    @property
    def livekit_configured(self) -> bool:
        return bool(self.livekit_url and self.livekit_api_key and self.livekit_api_secret)
