"""Who is calling. The JSON API takes only bearer tokens; the pages take only the session cookie.

Keeping the two apart means the cookie can never authorise an API call that skips CSRF.
"""

from __future__ import annotations

from litestar import Request

from app.errors import AuthenticationFailed
from app.services.accounts import Principal, resolve_session

SESSION_COOKIE = "heirline_session"


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def api_principal(request: Request) -> Principal:
    principal = await resolve_session(bearer_token(request))
    if principal is None:
        raise AuthenticationFailed("send a valid session token: Authorization: Bearer <token>")
    return principal


async def page_principal(request: Request) -> Principal:
    principal = await resolve_session(request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise AuthenticationFailed("log in first")
    return principal


async def optional_page_principal(request: Request) -> Principal | None:
    return await resolve_session(request.cookies.get(SESSION_COOKIE))
