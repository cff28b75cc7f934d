"""The HTTP service: FastAPI app, token check, live feed, pages (`clara-es serve`)."""

from clara_es.http.app import create_app
from clara_es.http.service import Options, Service

__all__ = ["Options", "Service", "create_app"]
