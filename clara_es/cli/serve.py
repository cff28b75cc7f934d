"""`clara-es serve`: the HTTP API, the live feeds and the pages, with what `clara-es run`
runs (the views, the process manager, its timers and the effect runner) in the same process,
on the store of CLARA_ES_DATABASE_URL (or --db)."""

from __future__ import annotations

import os
from pathlib import Path
from types import FrameType

import click
import uvicorn
from fastapi import FastAPI

from clara_es.bootstrap import bootstrap
from clara_es.cli.common import (
    CommandError,
    api_credentials,
    claim_store,
    console,
    db_option,
    require_folder,
    root_for,
)
from clara_es.config import Settings
from clara_es.http import Options, Service, create_app

# On SIGTERM the live feeds end at once; commands in flight get this long to finish (each
# append is one transaction, so a cut-off command appended all of its events or none).
GRACE_SECONDS = 5
MAX_LAG_VARIABLE = "CLARA_ES_SERVE_MAX_LAG"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--max-lag", type=click.IntRange(min=0), default=1000, show_default=True,
              help="/readyz fails while a view is more events than this behind.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes on one port (PostgreSQL): each runs the process manager "
                   "and stands by for the views.")
@db_option
def serve(host: str, port: int, max_lag: int, workers: int, db: Path | None) -> None:
    """Serve the HTTP API, the status page (/) and the dashboard (/dashboard)."""
    root = root_for(db)
    api_key, api_secret = api_credentials(root.settings)
    store = root.store
    require_folder(store)
    root.configure_logging()
    if workers > 1:
        if store.backend != "postgres":
            raise CommandError("--workers needs PostgreSQL: SQLite runs one process per file")
        os.environ[MAX_LAG_VARIABLE] = str(max_lag)  # read by every worker's app factory
        console.print(f"clara-es on http://{host}:{port}/ with {workers} workers, "
                      f"store {store.url}")
        uvicorn.run("clara_es.cli.serve:worker_app", factory=True, host=host, port=port,
                    workers=workers, log_config=None, log_level=root.settings.log_level,
                    timeout_graceful_shutdown=GRACE_SECONDS)
        return
    service = root.service(api_key, api_secret, _options(root.settings, max_lag))
    # Claimed once the store is known to be good, so a refused start leaves no file behind.
    claim = claim_store(root)  # noqa: F841  (held until the process ends)
    console.print(f"clara-es on http://{host}:{port}/ (dashboard: /dashboard, API: /docs), "
                  f"store {store.url}")
    # log_config=None: uvicorn's loggers go through the process's log lines, not their own.
    config = uvicorn.Config(
        create_app(service), host=host, port=port, log_config=None,
        log_level=root.settings.log_level, timeout_graceful_shutdown=GRACE_SECONDS,
    )
    ClosingServer(config, service).run()


def worker_app() -> FastAPI:
    """One worker process of `serve --workers N`: its own service on the configured store."""
    root = bootstrap()
    root.configure_logging()
    api_key, api_secret = api_credentials(root.settings)
    options = _options(root.settings, int(os.environ.get(MAX_LAG_VARIABLE, "1000")))
    return create_app(root.service(api_key, api_secret, options))


def _options(settings: Settings, max_lag: int) -> Options:
    return Options(
        max_lag=max_lag, max_overdue_s=settings.ready_max_overdue_s,
        max_body_bytes=settings.http_max_body_bytes, store_timeout_s=settings.store_timeout_s,
        webhook_window_s=settings.webhook_window_s, cors_origins=settings.cors_origins,
    )


class ClosingServer(uvicorn.Server):
    """Ends the live feeds as soon as shutdown begins, so they do not hold it up."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service.changes.close()
        super().handle_exit(sig, frame)
