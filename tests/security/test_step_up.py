"""A stolen session alone cannot redirect a legacy plan: changing heirs, contacts or the veto window needs a
password and code from the last 15 minutes (a fresh login counts)."""

from __future__ import annotations

import datetime as dt

from app.clock import now
from app.storage.tables import Heir, OwnerSession
from tests.support import last_code


async def age_sessions(minutes: int = 20) -> None:
    await OwnerSession.update({OwnerSession.stepped_up_at: now() - dt.timedelta(minutes=minutes)}, force=True)


HEIR = {"name": "李明", "email": "heir@example.com"}


async def test_sensitive_changes_need_a_recent_step_up(client, owner):
    assert (await client.post("/v1/me/heirs", json=HEIR, headers=owner.headers)).status_code == 201  # fresh login
    await age_sessions()
    for method, url, body in [("POST", "/v1/me/heirs", {**HEIR, "email": "other@example.com"}),
                              ("POST", "/v1/me/contacts", {"kind": "email", "address": "x@example.com"}),
                              ("PUT", "/v1/me/legacy-settings", {"veto_window_days": 1})]:
        response = await client.request(method, url, json=body, headers=owner.headers)
        assert response.status_code == 403 and response.json()["err"] == "step_up_required", url
    assert (await client.get("/v1/me/heirs", headers=owner.headers)).status_code == 200  # reading is fine
    assert await Heir.count() == 1

    await client.post("/v1/otp", json={"phone_number": owner.phone, "purpose": "step_up"})
    code = await last_code(owner.phone)
    wrong = await client.post("/v1/me/step-up", json={"password": "not my password", "code": code},
                              headers=owner.headers)
    assert wrong.status_code == 401
    await client.post("/v1/otp", json={"phone_number": owner.phone, "purpose": "step_up"})
    done = await client.post("/v1/me/step-up", json={"password": owner.password, "code": await last_code(owner.phone)},
                             headers=owner.headers)
    assert done.status_code == 204
    assert (await client.post("/v1/me/heirs", json={**HEIR, "email": "other@example.com"},
                              headers=owner.headers)).status_code == 201
    trail = [e["action"] for e in (await client.get("/v1/me/audit", headers=owner.headers)).json()]
    assert "session:step_up" in trail


async def test_pages_send_the_owner_through_the_step_up(client, owner):
    import re

    def csrf(html: str) -> str:
        return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)

    client.cookies.set("heirline_session", owner.token)
    page = await client.get("/inventory")
    await age_sessions()
    response = await client.post("/heirs", data={**HEIR, "_csrf_token": csrf(page.text)},
                                 headers={"referer": "http://testserver.local/inventory"})
    assert response.status_code == 303 and response.headers["location"] == "/step-up?next=/inventory"
    form = await client.get("/step-up?next=/inventory")
    sent = await client.post("/step-up/code", data={"next": "/inventory", "_csrf_token": csrf(form.text)})
    assert sent.status_code == 303 and "sent=1" in sent.headers["location"]
    form = await client.get(sent.headers["location"])
    done = await client.post("/step-up", data={"password": owner.password, "code": await last_code(owner.phone),
                                               "next": "/inventory", "_csrf_token": csrf(form.text)})
    assert done.status_code == 303 and done.headers["location"] == "/inventory"
    again = await client.post("/heirs", data={**HEIR, "_csrf_token": csrf(form.text)})
    assert again.status_code == 303 and again.headers["location"].startswith("/inventory")
    assert await Heir.count() == 1
    client.cookies.delete("heirline_session")


async def test_disabling_ends_every_session(client, owner, cli_env):
    import subprocess
    import sys

    from tests.support import confirmed_heir, log_in_person

    heir = await confirmed_heir(client, owner, "heir@example.com")
    second = await log_in_person(client, heir.email, heir.password)
    for identifier in (owner.phone, heir.email):
        done = subprocess.run([sys.executable, "-m", "app.cli", "accounts", "disable", identifier], env=cli_env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert (await client.get("/v1/me/bindings", headers=owner.headers)).status_code == 401
    for person in (heir, second):
        assert (await client.get("/v1/me/designations", headers=person.headers)).status_code == 401
    await client.post("/v1/otp", json={"email": heir.email, "purpose": "login"})
    login = await client.post("/v1/sessions", json={"email": heir.email, "password": heir.password, "code": "123456"})
    assert login.status_code == 401
