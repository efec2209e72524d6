"""The pending login between password and code: a signed, short-lived, HttpOnly cookie.

Owners (``/login``) and people's accounts (``/accounts``) both sign in in two steps; what the first
step proved rides to the second in this cookie, signed with the server's secret key.
"""

from __future__ import annotations

import hmac
import time
from hashlib import sha256

from litestar import Request
from litestar.datastructures import Cookie

from app.settings import get_settings

TTL = 600


def _sign(value: str) -> str:
    return hmac.new(get_settings().secret_key, value.encode(), sha256).hexdigest()


def issue(key: str, path: str, *fields: str) -> Cookie:
    payload = "|".join([*fields, str(int(time.time()) + TTL)])
    return Cookie(key=key, value=f"{payload}|{_sign(payload)}", path=path, httponly=True, samesite="lax",
                  secure=get_settings().cookie_secure, max_age=TTL)


def read(request: Request, key: str) -> list[str] | None:
    """The fields given to :func:`issue`, or None when the cookie is missing, forged or expired."""
    payload, _, signature = request.cookies.get(key, "").rpartition("|")
    if not payload or not hmac.compare_digest(_sign(payload), signature):
        return None
    *fields, expires = payload.split("|")
    return fields if int(expires) >= time.time() else None


def clear(key: str, path: str) -> Cookie:
    return Cookie(key=key, value="", path=path, max_age=0)
