"""Every integration test runs on a real SQLite file and on a real PostgreSQL schema (see
tests/support/stores.py); the HTTP tests serve the app under uvicorn on a loopback port."""

from tests.support.http_service import base_url, client, service
from tests.support.stores import (
    app,
    application_name,
    make_app,
    postgres_store,
    sqlite_store,
    store,
)

__all__ = ["app", "application_name", "base_url", "client", "make_app", "postgres_store",
           "service", "sqlite_store", "store"]
