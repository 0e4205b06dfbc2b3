"""The API's OpenAPI description, made to say what the server answers: FastAPI documents a 422
for every route with parameters, where this server answers 400 (`answers.validation_error`), and
knows nothing of the guards every request passes. `describe` replaces the 422s with the
answers of the guards: 421 everywhere (a Host not the server's), 403 where a request changes
state (another site's page), 401 with a token (except on the health route).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from floatalk.apps.server.schemas import ErrorBody

__all__ = ["describe"]

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_GUARDS = {
    "401": "the server's token is missing or wrong",
    "403": "a request that changes state, sent by a page of another site (see --allow-origin)",
    "421": "the Host header names a host this server does not answer to (see --allowed-host)",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def describe(app: FastAPI, *, token: bool, open_paths: tuple[str, ...]) -> None:
    """Make `app.openapi()` return the description with the guards' answers and without 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    responses["421"] = _error(_GUARDS["421"])
                    if method in ("post", "put", "patch", "delete"):
                        responses["403"] = _error(_GUARDS["403"])
                    if token and path not in open_paths:
                        responses["401"] = _error(_GUARDS["401"])
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
