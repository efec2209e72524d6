"""One mapping from errors to answers: RFC 9457 problem+json for the APIs, friendly pages for people."""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template

from app.errors import AuthenticationFailed, HeirlineError, StepUpRequired
from app.web.i18n import gettext, negotiate

log = logging.getLogger("heirline.errors")

API_PREFIXES = ("/v1/", "/hooks/", "/ssf/", "/number-recycling/", "/.well-known/", "/healthz", "/readyz",
                "/schema")
CAMARA_PREFIX = "/number-recycling/"  # CAMARA's own error shape: {"status", "code", "message"}
CAMARA_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                405: "INVALID_ARGUMENT", 413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT", 422: "UNPROCESSABLE_ENTITY",
                429: "TOO_MANY_REQUESTS", 503: "UNAVAILABLE"}
ACCOUNT_PAGES = ("/heir", "/review", "/accounts")  # pages for heirs, executors and reviewers (e-mail login)
ERR_BY_STATUS = {400: "invalid_request", 401: "authentication_failed", 403: "access_denied",
                 404: "not_found", 405: "invalid_request", 409: "conflict", 413: "invalid_request",
                 415: "invalid_request", 422: "invalid_request", 429: "rate_limited"}
TITLES = {400: "Invalid request", 401: "Authentication failed", 403: "Access denied", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Request body too large",
          415: "Unsupported media type", 422: "Unsafe content", 429: "Too many requests", 500: "Internal error",
          503: "Service unavailable"}


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def problem(status: int, detail: str, *, err: str | None = None, title: str | None = None,
            extra: dict | None = None, headers: dict | None = None) -> Response:
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status,
            "detail": detail,
            "err": err or ERR_BY_STATUS.get(status, "internal_error" if status >= 500 else "invalid_request")}
    body.update(extra or {})
    return Response(body, status_code=status, media_type="application/problem+json", headers=headers)


def _page(request: Request, status: int, detail: str, headers: dict | None = None) -> Response:
    lang = negotiate(request.cookies.get("lang"), request.headers.get("accept-language"))
    _ = gettext(lang)
    return Template(
        "errors/error.html.j2",
        context={"status": status, "title": _(TITLES.get(status, "Error")), "detail": _(detail),
                 "_": _, "lang": lang, "user": None, "request_path": request.url.path},
        status_code=status, media_type=MediaType.HTML, headers=headers,
    )


def is_busy(exc: Exception) -> bool:
    """The database is locked, overloaded or unreachable: the client should retry, not give up."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    try:
        import asyncpg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (asyncpg.exceptions.TooManyConnectionsError, asyncpg.exceptions.CannotConnectNowError,
                            ConnectionRefusedError, asyncpg.exceptions.ConnectionDoesNotExistError))


def handle(request: Request, exc: Exception) -> Response:
    headers = None
    extra: dict = {}
    if isinstance(exc, HeirlineError):
        status, detail, err = exc.status, exc.detail, exc.err
        if exc.field:
            extra["field"] = exc.field
        if exc.retry_after:
            headers = {"Retry-After": str(exc.retry_after)}
        if isinstance(exc, StepUpRequired) and not is_api(request):
            back = request.headers.get("referer", "")
            back = "/" + back.split("://", 1)[-1].split("/", 1)[-1] if "://" in back else "/inventory"
            return Redirect(path=f"/step-up?next={quote(back.split('#')[0])}", status_code=303)
        if isinstance(exc, AuthenticationFailed) and not is_api(request) and request.method == "GET":
            login = "/accounts/login" if request.url.path.startswith(ACCOUNT_PAGES) else "/login"
            return Redirect(path=f"{login}?next={request.url.path}", status_code=303)
    elif isinstance(exc, HTTPException):
        status, err = exc.status_code, None
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(status, "Error")
        if isinstance(exc, ValidationException) and exc.extra:
            extra["errors"] = exc.extra
        if status == 403 and "csrf" in detail.lower():
            detail = "The form expired or was not sent from this site: reload the page and try again"
        if status >= 500:
            log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, detail)
            detail = TITLES.get(status, "Error")
    elif is_busy(exc):
        log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
        status, detail, err = 503, "The service is busy; retry shortly", "temporarily_unavailable"
        headers = {"Retry-After": "2"}
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail, err = 500, "Something went wrong on our side; it has been logged.", None
    if request.url.path.startswith(CAMARA_PREFIX):
        code = getattr(exc, "camara_code", None) or CAMARA_CODES.get(status, "INVALID_ARGUMENT" if status < 500
                                                                      else "INTERNAL")
        if isinstance(exc, ValidationException):
            detail = "schema validation failed: " + "; ".join(
                str(e.get("message", "")) + (f" ({e.get('key')})" if e.get("key") else "")
                for e in (exc.extra or []) if isinstance(e, dict)) if exc.extra else detail
        return Response({"status": status, "code": code, "message": detail}, status_code=status,
                        media_type="application/json", headers=headers)
    if is_api(request):
        return problem(status, detail, err=err, extra=extra, headers=headers)
    return _page(request, status, detail, headers)
