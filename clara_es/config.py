"""Settings, read once from the environment (prefix CLARA_ES_) with pydantic-settings."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///clara-es.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLARA_ES_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None
