"""A handler's model as its JSON answer, built in the handler's own thread.

A sync handler that returns a model has FastAPI validate it again against the response model
in a second hop to the thread pool, then serialise it; a handler that returns the Response
itself skips both. The route still names its response model (`response_model`), so the
OpenAPI description is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel


def answer(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(model.model_dump_json(), status, headers, media_type="application/json")
