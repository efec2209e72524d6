"""Cookie flags on every login, and CSRF on every page that accepts a POST (from the route table)."""

from __future__ import annotations

import re

from tests.support import last_code
from tests.security.test_authorization_matrix import MATRIX, routes

API = ("/v1/", "/hooks/", "/ssf/", "/number-recycling/", "/.well-known/", "/healthz", "/readyz", "/schema", "/metrics")


def csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def test_session_cookie_is_httponly_and_samesite(client):
    page = await client.get("/signup")
    await client.post("/signup/code", data={"phone_number": "+8613800138000", "_csrf_token": csrf(page.text)})
    form = await client.get("/signup/verify?phone=%2B8613800138000")
    response = await client.post("/signup", data={
        "phone_number": "+8613800138000", "code": await last_code("+8613800138000"),
        "password": "correct horse battery", "email": "o@example.com", "_csrf_token": csrf(form.text)})
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "heirline_session=" in v)
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    client.cookies.delete("heirline_session")


async def test_every_page_post_refuses_a_missing_csrf_token(client):
    page_posts = [path for method, path in routes(client.app) if method == "POST" and not path.startswith(API)]
    assert len(page_posts) > 25 and all(f"POST {p}" in MATRIX for p in page_posts)
    for path in page_posts:
        concrete = re.sub(r"\{\w+:uuid\}", "00000000-0000-0000-0000-000000000000", path)
        concrete = re.sub(r"\{\w+:\w+\}", "x", concrete)
        response = await client.post(concrete, data={"anything": "1"})
        assert response.status_code == 403, f"{path}: {response.status_code}"


async def test_machine_endpoints_change_nothing_and_mint_no_csrf_cookie(client):
    """Probes, metrics and discovery documents are GETs for machines: no CSRF cookie is minted for them
    (a token signed for every probe), while a page still gets its cookie."""
    for path in ("/healthz", "/readyz", "/metrics", "/.well-known/ssf-configuration", "/schema/openapi.json"):
        client.cookies.clear()
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "csrftoken" not in response.headers.get("set-cookie", ""), path
    client.cookies.clear()
    page = await client.get("/signup")
    assert "csrftoken=" in page.headers.get("set-cookie", "")
