"""Real processes on a real SQLite file and a real PostgreSQL schema (tests/support/stores.py),
and the status page in a real browser."""

from tests.support.browser import page
from tests.support.http_service import base_url, client, service
from tests.support.stores import app, make_app, postgres_store, sqlite_store, store

__all__ = ["app", "base_url", "client", "make_app", "page", "postgres_store", "service",
           "sqlite_store", "store"]
