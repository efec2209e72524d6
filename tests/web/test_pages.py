"""The HTML pages: CSRF on every form, both languages, friendly errors, and the owner's journeys."""

from __future__ import annotations

import re

import pytest

from app.storage.tables import Binding, OneTimeCode, Owner
from tests.support import last_code, platform_id

PHONE = "+8613800138000"


def csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def form_post(client, page_url: str, action: str, data: dict, **kwargs):
    page = await client.get(page_url, **kwargs)
    assert page.status_code == 200, page.text
    return await client.post(action, data={**data, "_csrf_token": csrf(page.text)}, **kwargs)


async def sign_up_by_pages(client, phone=PHONE, password="correct horse battery"):
    response = await form_post(client, "/signup", "/signup/code", {"phone_number": phone})
    assert response.status_code == 303, response.text
    verify_url = response.headers["location"]
    code = await last_code(phone)
    response = await form_post(client, verify_url, "/signup",
                               {"phone_number": phone, "code": code, "password": password, "email": "li@example.com"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/inventory"
    return response


async def test_every_form_carries_a_csrf_token(client):
    for url in ["/signup", "/login", "/signup/verify?phone=%2B8613800138000"]:
        html = (await client.get(url)).text
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S)
        assert forms, url
        assert all('name="_csrf_token"' in f for f in forms), url


async def test_post_without_csrf_token_is_refused(client):
    await client.get("/signup")
    response = await client.post("/signup/code", data={"phone_number": PHONE})
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert await OneTimeCode.count() == 0


async def test_post_with_a_forged_csrf_token_is_refused(client):
    await client.get("/signup")
    response = await client.post("/signup/code", data={"phone_number": PHONE, "_csrf_token": "forged"})
    assert response.status_code == 403
    assert await OneTimeCode.count() == 0


async def test_sign_up_add_bindings_log_out_and_in(client):
    await sign_up_by_pages(client)
    inventory = await client.get("/inventory")
    assert inventory.status_code == 200 and "no-bindings" in inventory.text
    form = {"platform_id": await platform_id(client, "alipay"), "binding_types": ["payment", "login"],
            "account_hint": "138****8000", "disposition": "unbind", "instructions": "", "heir_id": ""}
    response = await form_post(client, "/bindings/new", "/bindings", form)
    assert response.status_code == 303, response.text
    form = {"platform_id": await platform_id(client, "weibo"), "binding_types": "login",
            "disposition": "memorialize", "account_hint": "", "heir_id": "", "instructions": "留作纪念"}
    assert (await form_post(client, "/bindings/new", "/bindings", form)).status_code == 303
    assert await Binding.count() == 2
    html = (await client.get("/inventory", headers={"accept-language": "zh-CN"})).text
    assert "支付宝" in html and "设为纪念账户" in html and "解绑" in html

    page = await client.get("/inventory")
    response = await client.post("/logout", data={"_csrf_token": csrf(page.text)})
    assert response.status_code == 303
    assert (await client.get("/inventory")).status_code == 303  # back to the login page

    response = await form_post(client, "/login", "/login", {"phone_number": PHONE, "password": "correct horse battery"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login/verify")
    code = await last_code(PHONE)
    response = await form_post(client, response.headers["location"], "/login/verify", {"code": code, "next": "/inventory"})
    assert response.status_code == 303 and response.headers["location"] == "/inventory"
    assert "支付宝" in (await client.get("/inventory", headers={"accept-language": "zh-CN"})).text


async def test_form_errors_are_shown_on_the_form_in_the_chosen_language(client):
    response = await form_post(client, "/signup", "/signup/code", {"phone_number": "12345"},
                               headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert response.status_code == 400
    assert "不是有效的手机号码" in response.text or "手机号码" in response.text
    response = await form_post(client, "/signup", "/signup/code", {"phone_number": "12345"},
                               headers={"accept-language": "en-US,en;q=0.9"})
    assert response.status_code == 400
    assert 'id="form-error"' in response.text and "phone number" in response.text


async def test_weak_password_on_the_page(client):
    response = await form_post(client, "/signup", "/signup/code", {"phone_number": PHONE})
    code = await last_code(PHONE)
    response = await form_post(client, response.headers["location"], "/signup",
                               {"phone_number": PHONE, "code": code, "password": "short", "email": "a@example.com"},
                               headers={"accept-language": "en"})
    assert response.status_code == 400 and "at least 10 characters" in response.text
    assert await Owner.count() == 0


async def test_binding_form_errors_keep_the_input(client):
    await sign_up_by_pages(client)
    form = {"platform_id": await platform_id(client, "alipay"), "binding_types": "payment",
            "account_hint": "keep-me", "disposition": "handover", "heir_id": "", "instructions": ""}
    response = await form_post(client, "/bindings/new", "/bindings", form, headers={"accept-language": "en"})
    assert response.status_code == 400
    assert "names the heir" in response.text and 'value="keep-me"' in response.text
    assert await Binding.count() == 0


async def test_another_owners_binding_pages_are_404(client):
    await sign_up_by_pages(client)
    form = {"platform_id": await platform_id(client, "alipay"), "binding_types": "payment",
            "disposition": "unbind", "account_hint": "", "heir_id": "", "instructions": ""}
    await form_post(client, "/bindings/new", "/bindings", form)
    binding = await Binding.select(Binding.id).first()
    page = await client.get("/inventory")
    await client.post("/logout", data={"_csrf_token": csrf(page.text)})
    await sign_up_by_pages(client, phone="+8613900139000")
    assert (await client.get(f"/bindings/{binding['id']}/edit")).status_code == 404
    page = await client.get("/inventory")
    response = await client.post(f"/bindings/{binding['id']}/delete", data={"_csrf_token": csrf(page.text)})
    assert response.status_code == 404
    assert await Binding.count() == 1


@pytest.mark.parametrize("accept, expected", [("zh-CN,zh;q=0.9,en;q=0.8", "注册"), ("en-GB,en;q=0.9", "Sign up"),
                                              ("fr-FR", "Sign up"), ("", "注册")])
async def test_language_follows_the_browser(client, accept, expected):
    html = (await client.get("/", headers={"accept-language": accept} if accept else {})).text
    assert expected in html


async def test_language_switch_overrides_the_browser(client):
    response = await client.get("/lang/en?next=/signup")
    assert response.status_code == 303 and response.headers["location"] == "/signup"
    html = (await client.get("/signup", headers={"accept-language": "zh-CN"})).text
    assert "Send code" in html
    response = await client.get("/lang/zh?next=//evil.example")
    assert response.headers["location"] == "/"


async def test_unknown_page_is_a_friendly_404(client):
    response = await client.get("/no/such/page", headers={"accept-language": "zh-CN"})
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"] and "未找到" in response.text


async def test_login_next_cannot_redirect_off_site(client):
    response = await client.get("/login?next=//evil.example/x")
    assert 'value="/inventory"' in response.text


async def test_security_headers_on_pages(client):
    response = await client.get("/")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"] or "unsafe-inline" not in \
        response.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    for header in ("x-frame-options", "x-content-type-options", "referrer-policy", "content-security-policy"):
        assert len(response.headers.get_list(header)) == 1, header  # set once, not once per layer
    docs = await client.get("/schema/swagger", headers={"x-correlator": "docs-1"})
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in docs.headers  # the interactive docs load their own scripts
    assert docs.headers.get_list("x-correlator") == ["docs-1"]


async def test_health_readiness_and_openapi(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in ["/v1/otp", "/v1/owners", "/v1/sessions", "/v1/me/bindings", "/v1/me/bindings/{binding_id}",
                 "/v1/me/heirs", "/v1/me/contacts", "/v1/platforms"]:
        assert path in paths, path
    assert not any(p.startswith("/inventory") for p in paths)


async def test_inventory_page_shows_an_open_case(client):
    from tests.support import make_carrier, send_event

    await sign_up_by_pages(client)
    form = {"platform_id": await platform_id(client, "alipay"), "binding_types": "payment",
            "disposition": "unbind", "account_hint": "", "heir_id": "", "instructions": ""}
    await form_post(client, "/bindings/new", "/bindings", form)
    carrier = await make_carrier()
    assert (await send_event(client, carrier, "number.disconnected", PHONE)).status_code == 202
    html = (await client.get("/inventory", headers={"accept-language": "zh-CN"})).text
    assert 'id="release-case"' in html and "已注销" in html and "待通知" in html and "支付宝" in html
    html = (await client.get("/inventory", headers={"accept-language": "en"})).text
    assert "cancelled" in html and "waiting" in html


async def test_a_locked_database_is_a_503_with_retry_after(client, owner, monkeypatch):
    import sqlite3

    from app.services import inventory

    async def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(inventory, "list_bindings", locked)
    response = await client.get("/v1/me/bindings", headers=owner.headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["err"] == "temporarily_unavailable"
