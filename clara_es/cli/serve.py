"""`clara-es serve`: the HTTP API, the live feeds and the pages, with what `clara-es run`
runs (the views, the process manager, its timers and the effect runner) in the same process,
on the store of CLARA_ES_DATABASE_URL (or --db)."""

from __future__ import annotations

from pathlib import Path
from types import FrameType

import click
import uvicorn

from clara_es.cli.common import api_credentials, console, db_option, require_folder, root_for
from clara_es.http import Options, Service, create_app

# On SIGTERM the live feeds end at once; commands in flight get this long to finish (each
# append is one transaction, so a cut-off command appended all of its events or none).
GRACE_SECONDS = 5


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--max-lag", type=click.IntRange(min=0), default=1000, show_default=True,
              help="/readyz fails while a view is more events than this behind.")
@db_option
def serve(host: str, port: int, max_lag: int, db: Path | None) -> None:
    """Serve the HTTP API, the status page (/) and the dashboard (/dashboard)."""
    root = root_for(db)
    api_key, api_secret = api_credentials(root.settings)
    store = root.store
    require_folder(store)
    root.configure_logging()
    settings = root.settings
    service = root.service(api_key, api_secret, Options(
        max_lag=max_lag, max_body_bytes=settings.http_max_body_bytes,
        store_timeout_s=settings.store_timeout_s, webhook_window_s=settings.webhook_window_s,
    ))
    console.print(f"clara-es on http://{host}:{port}/ (dashboard: /dashboard, API: /docs), "
                  f"store {store.url}")
    # log_config=None: uvicorn's loggers go through the process's log lines, not their own.
    config = uvicorn.Config(
        create_app(service), host=host, port=port, log_config=None,
        log_level=root.settings.log_level, timeout_graceful_shutdown=GRACE_SECONDS,
    )
    ClosingServer(config, service).run()


class ClosingServer(uvicorn.Server):
    """Ends the live feeds as soon as shutdown begins, so they do not hold it up."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service.changes.close()
        super().handle_exit(sig, frame)
