"""Who is calling. The JSON API takes only bearer tokens; the pages take only the session cookie.

Keeping the two apart means the cookie can never authorise an API call that skips CSRF. Each guard
names the kind of person a route is for: an owner (by number), an account (heir, executor) or a
reviewer; a session of another kind is refused with 403.
"""

from __future__ import annotations

from litestar import Request

from app.errors import AccessDenied, AuthenticationFailed
from app.services.accounts import Principal, require_step_up, resolve_session

SESSION_COOKIE = "heirline_session"


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


REFUSALS = {
    "owner": "this is for the owner of a number: log in with your number",
    "account": "this is for heirs, executors and reviewers: log in with your e-mail",
    "new_holder": "this is for the new holder of a number: prove it with a `new_holder` code",
}


def _require(principal: Principal | None, kind: str, login_hint: str) -> Principal:
    if principal is None:
        raise AuthenticationFailed(login_hint)
    wanted = "account" if kind == "reviewer" else kind
    if wanted != "any" and principal.kind != wanted:
        raise AccessDenied(REFUSALS[wanted])
    if kind == "reviewer" and not principal.is_reviewer:
        raise AccessDenied("this needs a reviewer's account")
    return principal


API_HINT = "send a valid session token: Authorization: Bearer <token>"


async def api_principal(request: Request) -> Principal:
    """An owner's session (the inventory, heirs, contacts, veto)."""
    return _require(await resolve_session(bearer_token(request)), "owner", API_HINT)


async def stepped_up_api_principal(request: Request) -> Principal:
    """An owner's session with a recent step-up (password and code): for contacts, heirs, the veto window."""
    principal = await api_principal(request)
    await require_step_up(principal)
    return principal


async def stepped_up_page_principal(request: Request) -> Principal:
    principal = await page_principal(request)
    await require_step_up(principal)
    return principal


async def any_api_principal(request: Request) -> Principal:
    return _require(await resolve_session(bearer_token(request)), "any", API_HINT)


async def account_api_principal(request: Request) -> Principal:
    return _require(await resolve_session(bearer_token(request)), "account", API_HINT)


async def reviewer_api_principal(request: Request) -> Principal:
    return _require(await resolve_session(bearer_token(request)), "reviewer", API_HINT)


async def new_holder_api_principal(request: Request) -> Principal:
    return _require(await resolve_session(bearer_token(request)), "new_holder", API_HINT)


async def new_holder_page_principal(request: Request) -> Principal:
    return _require(await resolve_session(request.cookies.get(SESSION_COOKIE)), "new_holder", "log in first")


async def page_principal(request: Request) -> Principal:
    return _require(await resolve_session(request.cookies.get(SESSION_COOKIE)), "owner", "log in first")


async def account_page_principal(request: Request) -> Principal:
    return _require(await resolve_session(request.cookies.get(SESSION_COOKIE)), "account", "log in first")


async def reviewer_page_principal(request: Request) -> Principal:
    return _require(await resolve_session(request.cookies.get(SESSION_COOKIE)), "reviewer", "log in first")


async def optional_page_principal(request: Request) -> Principal | None:
    return await resolve_session(request.cookies.get(SESSION_COOKIE))
