"""Pages for the new holder of a number: prove it with a code, see counts, ask platforms to unbind."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from msgspec import Struct

from app.domain.numbers import normalize
from app.errors import HeirlineError
from app.services import accounts, codes, new_holders
from app.services.accounts import Principal
from app.settings import get_settings
from app.web.auth import SESSION_COOKIE, client_of, new_holder_page_principal
from app.web.pages import PhoneForm, _error_text, lang_of, page, session_cookie


class CodeForm(Struct):
    phone_number: str = ""
    code: str = ""


class HarassmentForm(Struct):
    kind: str = ""
    caller_number: str = ""
    note: str = ""
    occurred_on: str = ""


class NewHolderPublicPages(Controller):
    include_in_schema = False

    @get("/new-holder")
    async def start(self, request: Request) -> Template:
        return page(request, "new_holder_start")

    @post("/new-holder/code")
    async def send_code(self, request: Request, data: URLEncodedBody[PhoneForm]) -> Response:
        try:
            number = normalize(data.phone_number, get_settings().default_region)
            await codes.send_code(number, codes.Purpose.NEW_HOLDER, client=client_of(request), locale=lang_of(request))
        except HeirlineError as exc:
            return page(request, "new_holder_start", status=exc.status, error=_error_text(request, exc),
                        phone_number=data.phone_number)
        return Redirect(path=f"/new-holder/verify?phone={quote(number.e164)}", status_code=303)

    @get("/new-holder/verify")
    async def verify_form(self, request: Request, phone: FromQuery[str] = "") -> Template:
        return page(request, "new_holder_verify", phone_number=phone)

    @post("/new-holder/verify")
    async def verify(self, request: Request, data: URLEncodedBody[CodeForm]) -> Response:
        try:
            token = await accounts.new_holder_session(data.phone_number, data.code.strip(), client=client_of(request),
                                                      user_agent=request.headers.get("user-agent", ""))
        except HeirlineError as exc:
            return page(request, "new_holder_verify", status=exc.status, error=_error_text(request, exc),
                        phone_number=data.phone_number)
        if request.cookies.get(SESSION_COOKIE):
            await accounts.log_out(request.cookies[SESSION_COOKIE])
        return Redirect(path="/new-holder/status", status_code=303, cookies=[session_cookie(token)])


class NewHolderPages(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(new_holder_page_principal)}

    async def _status(self, request: Request, principal: Principal, status: int = 200, **extra: Any) -> Template:
        return page(request, "new_holder", status=status, user=principal,
                    number=await new_holders.number_status(principal),
                    reports=await new_holders.harassment(principal), kinds=new_holders.HARASSMENT_KINDS, **extra)

    @get("/new-holder/status")
    async def status(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return await self._status(request, principal)

    @post("/new-holder/unbind-requests")
    async def request_unbinding(self, principal: NamedDependency[Principal]) -> Redirect:
        await new_holders.request_unbinding(principal)
        return Redirect(path="/new-holder/status", status_code=303)

    @post("/new-holder/harassment-reports")
    async def report(self, request: Request, principal: NamedDependency[Principal],
                     data: URLEncodedBody[HarassmentForm]) -> Response:
        try:
            await new_holders.report_harassment(principal, data.kind, data.caller_number or None, data.note,
                                                data.occurred_on or None)
        except HeirlineError as exc:
            return await self._status(request, principal, status=exc.status, error=_error_text(request, exc))
        return Redirect(path="/new-holder/status#harassment", status_code=303)
