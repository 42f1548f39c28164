"""RFC 9457 problem details: every error the API returns, made by one set of handlers.

Body: ``type``, ``title``, ``status``, ``detail`` plus the extensions ``code`` (stable, for
programs) and ``field`` (the offending input, e.g. ``query.limit``) when one is to blame.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchyard.config_errors import field_path
from switchyard.errors import ConflictError, FencingError, NotFoundError, TransientError

MEDIA_TYPE = "application/problem+json"


class ApiError(Exception):
    """Raised by routes and dependencies to answer with a specific problem."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = headers


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
    503: "Unavailable",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://switchyard.dev/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem_response(
            exc.status, exc.code, exc.detail, field=exc.field, headers=exc.headers
        )

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        field = field_path(tuple(first["loc"]))
        # The message, never the input: an input may be a secret pasted by mistake.
        return problem_response(422, "validation_failed", f"{field}: {first['msg']}", field=field)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "route_not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return problem_response(exc.status_code, code, str(exc.detail))

    async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFoundError)
        return problem_response(404, exc.code, str(exc))

    async def on_conflict(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConflictError)
        return problem_response(409, exc.code, str(exc))

    async def on_fenced(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(409, "fenced", str(exc))

    async def on_transient(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TransientError)
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        return problem_response(503, exc.code, str(exc), headers=headers)

    app.add_exception_handler(ApiError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(NotFoundError, on_not_found)
    app.add_exception_handler(ConflictError, on_conflict)
    app.add_exception_handler(FencingError, on_fenced)
    app.add_exception_handler(TransientError, on_transient)
