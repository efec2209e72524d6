"""Every route, called as every kind of client, with other people's ids.

The matrix below names, for each route of the application, who may call it. The test walks the
route table: a route missing from the matrix fails the test, a client outside the allowed set must be
refused (401/403, or the login redirect for pages), and an allowed client using someone else's id must
get a 4xx, never another person's data. No answer may be a 5xx.
"""

from __future__ import annotations

import uuid

import pytest

from app.services import recycling, streams
from tests.support import PNG, confirmed_heir, make_carrier, reviewer, send_event, sign_up, upload

ANYONE = {"anonymous", "owner", "heir", "reviewer", "carrier", "platform", "caller", "new_holder"}
OWNER, HEIR, REVIEWER, NEW_HOLDER = {"owner"}, {"heir", "reviewer"}, {"reviewer"}, {"new_holder"}
MACHINES = {"carrier", "platform", "caller"}

# route -> (who may call it, JSON or form body)
MATRIX: dict[str, tuple[set[str], dict | None]] = {
    # public
    "GET /healthz": (ANYONE, None), "GET /readyz": (ANYONE, None),
    "GET /metrics": (ANYONE, None),  # restricted to the monitoring network at the proxy (docs/operations.md)
    "GET /v1/platforms": (ANYONE, None),
    "POST /v1/otp": (ANYONE, {"phone_number": "+8613600136000", "purpose": "signup"}),
    "POST /v1/owners": (ANYONE, {"phone_number": "+8613600136000", "code": "123456", "password": "x" * 12,
                                 "email": "x@example.com"}),
    "POST /v1/sessions": (ANYONE, {"phone_number": "+8613800138000", "password": "wrong password 1", "code": "123456"}),
    "GET /v1/invitations/{token:str}": (ANYONE, None),
    "POST /v1/invitations/{token:str}/accept": (ANYONE, {"password": "x" * 12}),
    "GET /.well-known/ssf-configuration": (ANYONE, None), "GET /.well-known/jwks.json": (ANYONE, None),
    "POST /hooks/carriers/{carrier_id:str}/v1": (ANYONE, {}),  # authenticated by its signature (401 without)
    # any session
    "DELETE /v1/sessions/current": ({"owner", "heir", "reviewer", "new_holder"}, None),
    "GET /v1/claims/{case_id:uuid}": ({"owner", "heir", "reviewer"}, None),
    # owners
    "GET /v1/me/bindings": (OWNER, None),
    "POST /v1/me/bindings": (OWNER, {"platform_id": str(uuid.uuid4()), "binding_types": ["login"],
                                     "disposition": "unbind"}),
    "GET /v1/me/bindings/{binding_id:uuid}": (OWNER, None),
    "PATCH /v1/me/bindings/{binding_id:uuid}": (OWNER, {"disposition": "delete"}),
    "DELETE /v1/me/bindings/{binding_id:uuid}": (OWNER, None),
    "GET /v1/me/contacts": (OWNER, None), "POST /v1/me/contacts": (OWNER, {"kind": "email", "address": "c@example.com"}),
    "DELETE /v1/me/contacts/{contact_id:uuid}": (OWNER, None),
    "GET /v1/me/heirs": (OWNER, None),
    "POST /v1/me/heirs": (OWNER, {"name": "N", "email": "n@example.com"}),
    "DELETE /v1/me/heirs/{heir_id:uuid}": (OWNER, None),
    "POST /v1/me/heirs/{heir_id:uuid}/confirm": (OWNER, None),
    "POST /v1/me/heirs/{heir_id:uuid}/invitation": (OWNER, None),
    "GET /v1/me/audit": (OWNER, None), "GET /v1/me/export": (OWNER, None),
    "POST /v1/me/deletion": (OWNER, {"password": "not the password 1"}),
    "POST /v1/me/step-up": (OWNER, {"password": "not the password 1", "code": "123456"}),
    "GET /step-up": (OWNER, None), "POST /step-up/code": (OWNER, {}),
    "POST /step-up": (OWNER, {"password": "not the password 1", "code": "123456"}), "GET /v1/me/number": (OWNER, None), "GET /v1/me/claims": (OWNER, None),
    "GET /v1/me/legacy-settings": (OWNER, None), "PUT /v1/me/legacy-settings": (OWNER, {"veto_window_days": 3}),
    "POST /v1/claims/{case_id:uuid}/veto": (OWNER, None),
    # heirs and executors (and reviewers, who are accounts too)
    "GET /v1/me/designations": (HEIR, None), "GET /v1/me/handovers": (HEIR, None),
    "GET /v1/me/handovers/{item_id:uuid}": (HEIR, None),
    "POST /v1/me/handovers/{item_id:uuid}/done": (HEIR, None),
    "POST /v1/claims": ({"heir"}, {"phone_number": "+8613800138000"}),  # the heir's own owner; reviewers: 403
    "POST /v1/claims/{case_id:uuid}/evidence": (HEIR, None),
    # reviewers
    "GET /v1/review/claims": (REVIEWER, None), "GET /v1/review/claims/{case_id:uuid}": (REVIEWER, None),
    "GET /v1/review/claims/{case_id:uuid}/evidence/{evidence_id:uuid}": (REVIEWER, None),
    "POST /v1/review/claims/{case_id:uuid}/decision": (REVIEWER, {"decision": "reject", "reason": "test"}),
    # new holders
    "GET /v1/me/number-status": (NEW_HOLDER, None), "POST /v1/me/unbind-requests": (NEW_HOLDER, None),
    "GET /v1/me/unbind-requests/{request_id:uuid}": (NEW_HOLDER, None),
    "GET /v1/me/harassment-reports": (NEW_HOLDER, None),
    "POST /v1/me/harassment-reports": (NEW_HOLDER, {"kind": "marketing"}),
    # machine clients
    "POST /v1/numbers/recycling:check": (MACHINES, {"queries": [{"phone_number": "+8613900139000",
                                                                 "since": "2024-01-01"}]}),
    "POST /number-recycling/v0.2/check": (MACHINES | NEW_HOLDER, {"specifiedDate": "2024-01-01"}),
    "POST /v1/carriers/{carrier_id:str}/disconnects:batch": ({"carrier"}, None),
    "POST /v1/numbers/clearance:query": ({"carrier"}, {"phone_numbers": ["+8613900139000"]}),
    "GET /v1/numbers/{e164:str}/clearance": ({"carrier"}, None),
    "POST /ssf/streams": ({"platform"}, {"delivery": {"method": "urn:ietf:rfc:8936"}}),
    "GET /ssf/streams": ({"platform"}, None), "PATCH /ssf/streams": ({"platform"}, {"stream_id": "x"}),
    "PUT /ssf/streams": ({"platform"}, {"stream_id": "x"}), "DELETE /ssf/streams": ({"platform"}, None),
    "GET /ssf/status": ({"platform"}, None), "POST /ssf/status": ({"platform"}, {"stream_id": "x", "status": "paused"}),
    "POST /ssf/subjects:add": ({"platform"}, {"stream_id": "x", "subject": {"format": "phone_number",
                                                                             "phone_number": "+8613900139000"}}),
    "POST /ssf/subjects:remove": ({"platform"}, {"stream_id": "x", "subject": {"format": "phone_number",
                                                                                "phone_number": "+8613900139000"}}),
    "POST /ssf/verify": ({"platform"}, {"stream_id": "x"}),
    "POST /ssf/poll/{stream_id:str}": ({"platform"}, {"returnImmediately": True}),
    "POST /v1/cases/{case_id:uuid}/outcomes": ({"platform"}, {"result": "unbound"}),
    # pages: public
    "GET /": (ANYONE, None), "GET /login": (ANYONE, None), "POST /login": (ANYONE, {}),
    "GET /login/verify": (ANYONE, None), "POST /login/verify": (ANYONE, {}), "POST /logout": (ANYONE, {}),
    "GET /signup": (ANYONE, None), "POST /signup": (ANYONE, {}), "POST /signup/code": (ANYONE, {}),
    "GET /signup/verify": (ANYONE, None), "GET /lang/{code:str}": (ANYONE, None),
    "GET /invitations/{token:str}": (ANYONE, None), "POST /invitations/{token:str}": (ANYONE, {}),
    "GET /accounts/login": (ANYONE, None), "POST /accounts/login": (ANYONE, {}),
    "GET /accounts/login/verify": (ANYONE, None), "POST /accounts/login/verify": (ANYONE, {}),
    "GET /veto/{link:str}": (ANYONE, None), "POST /veto/{link:str}": (ANYONE, {}),
    "GET /new-holder": (ANYONE, None), "POST /new-holder/code": (ANYONE, {}),
    "GET /new-holder/verify": (ANYONE, None), "POST /new-holder/verify": (ANYONE, {}),
    "GET /demo/outbox": (ANYONE, None),  # 404 outside demo and development
    "GET /static/{file_path:path}": (ANYONE, None),
    # pages: owners
    "GET /inventory": (OWNER, None), "GET /activity": (OWNER, None), "GET /bindings/new": (OWNER, None),
    "POST /bindings": (OWNER, {}), "GET /bindings/{binding_id:uuid}/edit": (OWNER, None),
    "POST /bindings/{binding_id:uuid}": (OWNER, {}), "POST /bindings/{binding_id:uuid}/delete": (OWNER, {}),
    "POST /contacts": (OWNER, {}), "POST /contacts/{contact_id:uuid}/delete": (OWNER, {}),
    "POST /heirs": (OWNER, {}), "POST /heirs/{heir_id:uuid}/delete": (OWNER, {}),
    "POST /heirs/{heir_id:uuid}/confirm": (OWNER, {}), "POST /heirs/{heir_id:uuid}/invitation": (OWNER, {}),
    "POST /legacy-settings": (OWNER, {"veto_window_days": "3"}), "POST /claims/{case_id:uuid}/veto": (OWNER, {}),
    # pages: heirs, reviewers, new holders
    "GET /heir": (HEIR, None), "POST /heir/claims": (HEIR, {}), "POST /heir/claims/{case_id:uuid}/evidence": (HEIR, None),
    "POST /heir/handovers/{item_id:uuid}/done": (HEIR, {}),
    "GET /review": (REVIEWER, None), "GET /review/{case_id:uuid}": (REVIEWER, None),
    "GET /review/{case_id:uuid}/evidence/{evidence_id:uuid}": (REVIEWER, None),
    "POST /review/{case_id:uuid}/decision": (REVIEWER, {"decision": "reject", "reason": "test"}),
    "GET /new-holder/status": (NEW_HOLDER, None), "POST /new-holder/unbind-requests": (NEW_HOLDER, {}),
    "POST /new-holder/harassment-reports": (NEW_HOLDER, {"kind": "marketing"}),
}
SCHEMA_PREFIX = "/schema"  # the OpenAPI documents are public
FOREIGN_IDS = {"binding_id", "contact_id", "heir_id", "case_id", "item_id", "request_id", "stream_id", "carrier_id",
               "evidence_id", "e164"}
REAUTH = {"POST /v1/me/deletion", "POST /v1/me/step-up", "POST /step-up"}  # allowed callers still give the password again: a wrong one is a 401
ENDS_SESSIONS = {"DELETE /v1/sessions/current", "POST /logout"}  # called last: they log each role out


@pytest.fixture
async def world(client):
    a = await sign_up(client, "+8613800138000", email="a.owner@example.com")
    b = await sign_up(client, "+8613900139000", email="b.owner@example.com")
    heir_of_b = await confirmed_heir(client, b, "heir.b@example.com")
    heir_of_a = await confirmed_heir(client, a, "heir.a@example.com", password="blue kite over hills")
    staff = await reviewer(client)
    carrier_a, carrier_b = await make_carrier("Carrier A"), await make_carrier("Carrier B")
    platform_a = await streams.add_platform("WeChat", poll=True)
    platform_b = await streams.add_platform("Alipay", poll=True)
    _, caller = await recycling.add_caller("Caller")
    await client.post("/v1/otp", json={"phone_number": "+8613700137000", "purpose": "new_holder"})
    from tests.support import last_code

    holder = (await client.post("/v1/sessions", json={"phone_number": "+8613700137000", "purpose": "new_holder",
                                                      "code": await last_code("+8613700137000")})).json()["token"]
    platforms = {p["slug"]: p["id"] for p in (await client.get("/v1/platforms")).json()}
    binding = (await client.post("/v1/me/bindings", headers=b.headers, json={
        "platform_id": platforms["alipay"], "binding_types": ["login"], "disposition": "unbind"})).json()
    contact = (await client.post("/v1/me/contacts", headers=b.headers,
                                 json={"kind": "email", "address": "b.second@example.com"})).json()
    claim = (await client.post("/v1/claims", json={"phone_number": b.phone}, headers=heir_of_b.headers)).json()
    evidence = (await upload(client, heir_of_b, claim["id"], PNG)).json()
    release = (await send_event(client, carrier_b, "number.disconnected", b.phone)).json()
    ids = {"binding_id": binding["id"], "contact_id": contact["id"], "heir_id": heir_of_b.heir_id,
           "case_id": claim["id"], "evidence_id": evidence["id"], "item_id": str(uuid.uuid4()),
           "request_id": str(uuid.uuid4()), "stream_id": platform_b.stream_id, "carrier_id": str(carrier_b.id),
           "e164": "+8613900139000", "token": "not-a-real-invitation-token", "link": f"{uuid.uuid4()}.nope",
           "code": "en", "file_path": "heirline.css", "release_case": release["case_id"]}
    tokens = {"anonymous": None, "owner": a.token, "heir": heir_of_a.token, "reviewer": staff.token,
              "carrier": carrier_a.api_token, "platform": platform_a.api_token, "caller": caller,
              "new_holder": holder}
    return ids, tokens


def routes(app) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", ())):
            if method not in ("HEAD", "OPTIONS"):
                out.append((method, route.path))
    return sorted(out, key=lambda r: f"{r[0]} {r[1]}" in ENDS_SESSIONS)


def fill(path: str, ids: dict, method: str) -> str:
    import re

    def value(match):
        name = match.group(1)
        if name == "case_id" and path.startswith("/v1/cases/"):
            return ids["release_case"]  # the release case of owner B, whose tasks platform A does not hold
        return ids[name]

    return re.sub(r"\{(\w+):\w+\}", value, path)


async def test_every_route_is_in_the_matrix(client):
    missing = [f"{m} {p}" for m, p in routes(client.app)
               if f"{m} {p}" not in MATRIX and not p.startswith(SCHEMA_PREFIX)]
    assert missing == [], "add these routes to the authorization matrix: " + ", ".join(missing)
    stale = set(MATRIX) - {f"{m} {p}" for m, p in routes(client.app)}
    assert stale == set()


async def test_each_role_is_allowed_or_refused_as_the_matrix_says(client, world):
    ids, tokens = world
    await client.get("/")
    csrf = client.cookies.get("csrftoken")
    problems = []
    for method, template in routes(client.app):
        if template.startswith(SCHEMA_PREFIX):
            continue
        allowed, body = MATRIX[f"{method} {template}"]
        path = fill(template, ids, method)
        is_page = not path.startswith(("/v1/", "/hooks/", "/ssf/", "/number-recycling/", "/.well-known/",
                                       "/healthz", "/readyz", "/metrics"))
        foreign = any(f"{{{name}:" in template for name in FOREIGN_IDS)
        for role, token in tokens.items():
            client.cookies.delete("heirline_session")
            headers = {}
            if token and not is_page:
                headers["Authorization"] = f"Bearer {token}"
            if token and is_page and role not in MACHINES:
                client.cookies.set("heirline_session", token)
            kwargs: dict = {"headers": headers}
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                if is_page:
                    kwargs["data"] = {**(body or {}), "_csrf_token": csrf}
                elif "evidence" in template and method == "POST":
                    kwargs["files"] = {"file": ("x.png", PNG, "image/png")}
                    kwargs["data"] = {"kind": "other"}
                elif body is not None:
                    kwargs["json"] = body
            response = await client.request(method, path, **kwargs)
            status = response.status_code
            where = f"{method} {path} as {role}: {status}"
            if status >= 500:
                problems.append(where + " (server error)")
            elif role not in allowed:
                refused = status in (401, 403) or (foreign and status == 404) or (is_page and status == 303 and "login" in response.headers.get(
                    "location", "")) or (is_page and status == 404 and "demo" in path)
                if not refused:
                    problems.append(where + " (should be refused)")
            elif foreign and allowed != ANYONE and role in ("owner", "heir", "platform", "carrier", "new_holder"):
                if status < 300 or status == 401:
                    problems.append(where + " (someone else's object must be a 403 or 404)")
            elif status in (401, 403) and allowed != ANYONE and not (status == 401 and f"{method} {template}" in REAUTH):
                problems.append(where + " (should be allowed)")
    client.cookies.delete("heirline_session")
    assert problems == [], "\n".join(problems)
