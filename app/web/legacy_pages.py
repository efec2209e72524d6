"""HTML pages for heirs, executors and reviewers, the invitation and the one-click veto link."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Template
from msgspec import Struct

from app.api.legacy import document_response
from app.domain.evidence import KINDS, MAX_BYTES, MAX_REQUEST_BYTES
from app.domain.legacy import VETO_PRESETS
from app.errors import HeirlineError, InvalidRequest, PayloadTooLarge
from app.services import accounts, heirs, legacy
from app.services.accounts import Principal
from app.web.auth import (
    SESSION_COOKIE, account_page_principal, client_of, page_principal, reviewer_page_principal,
    stepped_up_page_principal,
)
from app.web import login_cookie
from app.web.pages import CodeForm, _error_text, _safe_next, lang_of, page, session_cookie

PENDING_ACCOUNT_COOKIE = "heirline_account_login"


class PasswordForm(Struct):
    password: str = ""


class AccountLoginForm(Struct):
    email: str = ""
    password: str = ""
    next: str = ""


class ClaimForm(Struct):
    heir_id: str = ""
    note: str = ""


class DecisionForm(Struct):
    decision: str = ""
    reason: str = ""
    evidence_verified: str = ""


class VetoDaysForm(Struct):
    veto_window_days: str = ""


def _pending_cookie(account_id: uuid.UUID) -> Cookie:
    return login_cookie.issue(PENDING_ACCOUNT_COOKIE, "/accounts", str(account_id))


def _pending(request: Request) -> uuid.UUID | None:
    fields = login_cookie.read(request, PENDING_ACCOUNT_COOKIE)
    return uuid.UUID(fields[0]) if fields else None


def _next_for(principal_reviewer: bool, target: str | None) -> str:
    if target and target.startswith(("/heir", "/review")):
        return _safe_next(target)
    return "/review" if principal_reviewer else "/heir"


class LegacyPublicPages(Controller):
    include_in_schema = False

    # ------------------------------------------------------------------ the invitation

    @get("/invitations/{token:str}")
    async def invitation(self, request: Request, token: FromPath[str]) -> Template:
        return page(request, "invitation", invitation=await heirs.invitation(token), token=token)

    @post("/invitations/{token:str}")
    async def accept(self, request: Request, token: FromPath[str], data: URLEncodedBody[PasswordForm]) -> Response:
        try:
            session = await heirs.accept(token, data.password, client=client_of(request), locale=lang_of(request),
                                         user_agent=request.headers.get("user-agent", ""))
        except HeirlineError as exc:
            if exc.status == 404:
                raise
            return page(request, "invitation", status=exc.status, error=_error_text(request, exc),
                        invitation=await heirs.invitation(token), token=token)
        return Redirect(path="/heir", status_code=303, cookies=[session_cookie(session)])

    # ------------------------------------------------------------------ "I am alive"

    @get("/veto/{link:str}")
    async def veto_page(self, request: Request, link: FromPath[str]) -> Template:
        return page(request, "veto", link=link, **await legacy.veto_link(link))

    @post("/veto/{link:str}")
    async def veto(self, request: Request, link: FromPath[str]) -> Template:
        case = await legacy.veto_by_link(link)
        return page(request, "veto", link=link, case=case, usable=False, done=True)

    # ------------------------------------------------------------------ login by e-mail

    @get("/accounts/login")
    async def login_form(self, request: Request, next: FromQuery[str | None] = None) -> Template:
        return page(request, "account_login", next=next or "")

    @post("/accounts/login")
    async def login_password(self, request: Request, data: URLEncodedBody[AccountLoginForm]) -> Response:
        try:
            account = await accounts.check_account_password(data.email, data.password, client=client_of(request))
            await accounts.send_account_code(account["email"], client=client_of(request), locale=lang_of(request))
        except HeirlineError as exc:
            return page(request, "account_login", status=exc.status, error=_error_text(request, exc),
                        email=data.email, next=data.next)
        return Redirect(path=f"/accounts/login/verify?next={data.next}", status_code=303,
                        cookies=[_pending_cookie(account["id"])])

    @get("/accounts/login/verify")
    async def login_code_form(self, request: Request, next: FromQuery[str | None] = None) -> Response:
        if _pending(request) is None:
            return Redirect(path="/accounts/login", status_code=303)
        return page(request, "account_login_verify", next=next or "")

    @post("/accounts/login/verify")
    async def login_code(self, request: Request, data: URLEncodedBody[CodeForm]) -> Response:
        account_id = _pending(request)
        account = await accounts.account_by_id(account_id) if account_id else None
        if account is None:
            return Redirect(path="/accounts/login", status_code=303)
        try:
            token = await accounts.complete_account_login(
                account, data.code.strip(), client=client_of(request), user_agent=request.headers.get("user-agent", ""),
                replaces=request.cookies.get(SESSION_COOKIE))
        except HeirlineError as exc:
            return page(request, "account_login_verify", status=exc.status, error=_error_text(request, exc),
                        next=data.next)
        gone = login_cookie.clear(PENDING_ACCOUNT_COOKIE, "/accounts")
        return Redirect(path=_next_for(account["is_reviewer"], data.next), status_code=303,
                        cookies=[session_cookie(token), gone])


class HeirPages(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(account_page_principal)}

    async def _home(self, request: Request, principal: Principal, status: int = 200, **extra: Any) -> Template:
        designations = await heirs.designations(principal.account_id)
        cases = {}
        for d in designations:
            if d["case_id"]:
                try:
                    cases[d["case_id"]] = await legacy.claim_view(principal, d["case_id"])
                except HeirlineError:
                    pass
        return page(request, "heir", status=status, user=principal, designations=designations, cases=cases,
                    handovers=await legacy.handovers(principal.account_id), kinds=KINDS, **extra)

    @get("/heir")
    async def home(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return await self._home(request, principal)

    @post("/heir/claims")
    async def open_claim(self, request: Request, principal: NamedDependency[Principal],
                         data: URLEncodedBody[ClaimForm]) -> Response:
        try:
            await legacy.open_claim(principal.account_id, heir_id=data.heir_id or None, note=data.note)
        except HeirlineError as exc:
            return await self._home(request, principal, status=exc.status, error=_error_text(request, exc))
        return Redirect(path="/heir", status_code=303)

    @post("/heir/claims/{case_id:uuid}/evidence", request_max_body_size=MAX_REQUEST_BYTES)
    async def upload(self, request: Request, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID],
                     data: MultipartBody[dict[str, Any]]) -> Response:
        try:
            upload = data.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidRequest("choose a file", field="file")
            content = await upload.read(MAX_BYTES + 1)
            if len(content) > MAX_BYTES:
                raise PayloadTooLarge(f"a document may be at most {MAX_BYTES // (1024 * 1024)} MiB")
            await legacy.add_evidence(principal.account_id, case_id, data.get("kind"), content)
        except HeirlineError as exc:
            if exc.status == 404:
                raise
            return await self._home(request, principal, status=exc.status, error=_error_text(request, exc))
        return Redirect(path="/heir", status_code=303)

    @post("/heir/handovers/{item_id:uuid}/done")
    async def done(self, principal: NamedDependency[Principal], item_id: FromPath[uuid.UUID]) -> Redirect:
        await legacy.mark_done(principal.account_id, item_id)
        return Redirect(path="/heir", status_code=303)


class ReviewPages(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(reviewer_page_principal)}

    @get("/review")
    async def queue(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return page(request, "review_queue", user=principal, cases=await legacy.review_queue(principal))

    @get("/review/{case_id:uuid}")
    async def show(self, request: Request, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID]) -> Template:
        return page(request, "review_case", user=principal, case=await legacy.review_case(principal, case_id))

    @get("/review/{case_id:uuid}/evidence/{evidence_id:uuid}")
    async def document(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID],
                       evidence_id: FromPath[uuid.UUID]) -> Response[bytes]:
        return document_response(*await legacy.evidence_file(principal, case_id, evidence_id))

    @post("/review/{case_id:uuid}/decision")
    async def decide(self, request: Request, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID],
                     data: URLEncodedBody[DecisionForm]) -> Response:
        try:
            await legacy.decide(principal, case_id, data.decision, data.reason, data.evidence_verified == "on")
        except HeirlineError as exc:
            if exc.status == 404:
                raise
            return page(request, "review_case", status=exc.status, user=principal, error=_error_text(request, exc),
                        case=await legacy.review_case(principal, case_id))
        return Redirect(path=f"/review/{case_id}", status_code=303)


class OwnerLegacyPages(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(page_principal)}

    @post("/heirs/{heir_id:uuid}/confirm", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def confirm(self, principal: NamedDependency[Principal], heir_id: FromPath[uuid.UUID]) -> Redirect:
        await heirs.confirm(principal.owner_id, heir_id)
        return Redirect(path="/inventory#heirs", status_code=303)

    @post("/heirs/{heir_id:uuid}/invitation", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def resend(self, principal: NamedDependency[Principal], heir_id: FromPath[uuid.UUID]) -> Redirect:
        await heirs.resend(principal.owner_id, heir_id)
        return Redirect(path="/inventory#heirs", status_code=303)

    @post("/legacy-settings", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def veto_days(self, principal: NamedDependency[Principal], data: URLEncodedBody[VetoDaysForm]) -> Redirect:
        days = int(data.veto_window_days) if data.veto_window_days.isdigit() else 0
        await legacy.set_veto_days(principal.owner_id, days if days in VETO_PRESETS else -1)
        return Redirect(path="/inventory#heirs", status_code=303)

    @post("/claims/{case_id:uuid}/veto")
    async def veto(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID]) -> Redirect:
        await legacy.veto_by_owner(principal.owner_id, case_id)
        return Redirect(path="/inventory#claims", status_code=303)
