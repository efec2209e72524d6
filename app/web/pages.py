"""HTML pages for owners: the same use cases as the JSON API, with CSRF on every form."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from msgspec import Struct

from app.domain.inventory import BindingType, Disposition
from app.domain.numbers import Number, mask, normalize
from app.errors import HeirlineError, NotFound
from app.notify.outbox import sent
from app.services import accounts, codes, inventory, legacy
from app.services.accounts import Principal
from app.settings import get_settings
from app.web.auth import (
    SESSION_COOKIE, client_of, optional_page_principal, page_principal, stepped_up_page_principal,
)
from app.web import login_cookie
from app.web.i18n import LANGUAGES, gettext, negotiate

PENDING_LOGIN_COOKIE = "heirline_login"


def lang_of(request: Request) -> str:
    return negotiate(request.cookies.get("lang"), request.headers.get("accept-language"))


def page(request: Request, name: str, status: int = 200, **context: Any) -> Template:
    lang = lang_of(request)
    context.setdefault("user", None)
    return Template(
        f"pages/{name}.html.j2",
        context={"_": gettext(lang), "lang": lang, "request_path": request.url.path,
                 "demo": get_settings().env in {"demo", "development"}, "mask": mask, **context},
        status_code=status, media_type=MediaType.HTML,
    )


def session_cookie(token: str | None) -> Cookie:
    settings = get_settings()
    return Cookie(
        key=SESSION_COOKIE, value=token or "", path="/", httponly=True, samesite="lax",
        secure=settings.cookie_secure, max_age=settings.session_ttl_hours * 3600 if token else 0,
    )


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, never //host or a scheme (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/inventory"


# ---- the pending login between password and code (see app.web.login_cookie)

def _pending_cookie(owner_id: uuid.UUID, e164: str) -> Cookie:
    return login_cookie.issue(PENDING_LOGIN_COOKIE, "/login", str(owner_id), e164)


def _pending(request: Request) -> tuple[uuid.UUID, Number] | None:
    fields = login_cookie.read(request, PENDING_LOGIN_COOKIE)
    return (uuid.UUID(fields[0]), normalize(fields[1])) if fields else None


# ---- forms: lenient structs (the CSRF field rides along)

class PhoneForm(Struct):
    phone_number: str = ""


class SignupForm(Struct):
    phone_number: str = ""
    code: str = ""
    password: str = ""
    email: str = ""


class LoginForm(Struct):
    phone_number: str = ""
    password: str = ""
    next: str = ""


class CodeForm(Struct):
    code: str = ""
    next: str = ""


class BindingForm(Struct):
    platform_id: str = ""
    binding_types: list[str] | str = []
    account_hint: str = ""
    disposition: str = ""
    heir_id: str = ""
    instructions: str = ""

    def to_input(self) -> inventory.BindingInput:
        types = [self.binding_types] if isinstance(self.binding_types, str) else self.binding_types
        return inventory.BindingInput(
            platform_id=self.platform_id or None, binding_types=types, account_hint=self.account_hint,
            disposition=self.disposition, heir_id=self.heir_id or None, instructions=self.instructions,
        )


class HeirForm(Struct):
    name: str = ""
    email: str = ""
    relationship: str = ""
    phone_number: str = ""
    is_executor: str = ""


class StepUpForm(Struct):
    password: str = ""
    code: str = ""
    next: str = ""


class ContactForm(Struct):
    kind: str = ""
    address: str = ""


def _error_text(request: Request, exc: HeirlineError) -> str:
    return gettext(lang_of(request))(exc.detail)


class PublicPages(Controller):
    include_in_schema = False

    @get("/")
    async def home(self, request: Request) -> Template:
        return page(request, "home", user=await optional_page_principal(request))

    @get("/lang/{code:str}")
    async def switch_language(self, code: FromPath[str], next: FromQuery[str | None] = None) -> Redirect:
        target = next if next and next.startswith("/") and not next.startswith("//") else "/"
        response = Redirect(path=target, status_code=303)
        if code in LANGUAGES:
            response.set_cookie(key="lang", value=code, path="/", max_age=365 * 86400, samesite="lax",
                                secure=get_settings().cookie_secure)
        return response

    # ------------------------------------------------------------------ sign-up

    @get("/signup")
    async def signup_start(self, request: Request) -> Template:
        return page(request, "signup_start")

    @post("/signup/code")
    async def signup_send_code(self, request: Request, data: URLEncodedBody[PhoneForm]) -> Response:
        try:
            number = normalize(data.phone_number, get_settings().default_region)
            await codes.send_code(number, codes.Purpose.SIGNUP, client=client_of(request), locale=lang_of(request))
        except HeirlineError as exc:
            return page(request, "signup_start", status=exc.status, error=_error_text(request, exc),
                        phone_number=data.phone_number)
        return Redirect(path=f"/signup/verify?phone={quote(number.e164)}", status_code=303)

    @get("/signup/verify")
    async def signup_verify(self, request: Request, phone: FromQuery[str] = "") -> Template:
        return page(request, "signup_verify", phone_number=phone)

    @post("/signup")
    async def signup(self, request: Request, data: URLEncodedBody[SignupForm]) -> Response:
        try:
            _, token = await accounts.sign_up(
                data.phone_number, data.code, data.password, data.email, client=client_of(request),
                locale=lang_of(request), user_agent=request.headers.get("user-agent", ""),
            )
        except HeirlineError as exc:
            return page(request, "signup_verify", status=exc.status, error=_error_text(request, exc),
                        phone_number=data.phone_number, email=data.email)
        return Redirect(path="/inventory", status_code=303, cookies=[session_cookie(token)])

    # ------------------------------------------------------------------ login

    @get("/login")
    async def login_start(self, request: Request, next: FromQuery[str | None] = None) -> Template:
        return page(request, "login", next=_safe_next(next))

    @post("/login")
    async def login_password(self, request: Request, data: URLEncodedBody[LoginForm]) -> Response:
        try:
            owner_id, number = await accounts.check_password_step(
                data.phone_number, data.password, client=client_of(request)
            )
            await codes.send_code(number, codes.Purpose.LOGIN, client=client_of(request), locale=lang_of(request))
        except HeirlineError as exc:
            return page(request, "login", status=exc.status, error=_error_text(request, exc),
                        phone_number=data.phone_number, next=_safe_next(data.next))
        return Redirect(path=f"/login/verify?next={quote(_safe_next(data.next))}", status_code=303,
                        cookies=[_pending_cookie(owner_id, number.e164)])

    @get("/login/verify")
    async def login_code_form(self, request: Request, next: FromQuery[str | None] = None) -> Response:
        pending = _pending(request)
        if pending is None:
            return Redirect(path="/login", status_code=303)
        return page(request, "login_verify", phone_number=pending[1].e164, next=_safe_next(next))

    @post("/login/verify")
    async def login_code(self, request: Request, data: URLEncodedBody[CodeForm]) -> Response:
        pending = _pending(request)
        if pending is None:
            return Redirect(path="/login", status_code=303)
        try:
            token = await accounts.complete_login(
                pending[0], pending[1], data.code.strip(), client=client_of(request),
                user_agent=request.headers.get("user-agent", ""), replaces=request.cookies.get(SESSION_COOKIE),
            )
        except HeirlineError as exc:
            return page(request, "login_verify", status=exc.status, error=_error_text(request, exc),
                        phone_number=pending[1].e164, next=_safe_next(data.next))
        gone = login_cookie.clear(PENDING_LOGIN_COOKIE, "/login")
        return Redirect(path=_safe_next(data.next), status_code=303, cookies=[session_cookie(token), gone])

    @post("/logout")
    async def logout(self, request: Request) -> Redirect:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await accounts.log_out(token)
        return Redirect(path="/", status_code=303, cookies=[session_cookie(None)])

    @get("/demo/outbox")
    async def demo_outbox(self, request: Request) -> Template:
        """Demo and development only: what the built-in notifier sent, so codes can be read."""
        if get_settings().env not in {"demo", "development"}:
            raise NotFound("no such page")
        return page(request, "outbox", messages=await sent(limit=30))


class OwnerPages(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(page_principal)}

    async def _inventory(self, request: Request, principal: Principal, status: int = 200, **extra: Any) -> Template:
        return page(
            request, "inventory", status=status, user=principal,
            bindings=await inventory.list_bindings(principal.owner_id),
            heirs=await inventory.list_heirs(principal.owner_id),
            claims=await legacy.owner_cases(principal.owner_id),
            legacy_settings=await legacy.legacy_settings(principal.owner_id),
            contacts=await inventory.list_contacts(principal.owner_id),
            number=await inventory.number_status(principal.owner_id), **extra,
        )

    @get("/inventory")
    async def show(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return await self._inventory(request, principal)

    async def _binding_form(self, request: Request, principal: Principal, status: int = 200, **extra: Any) -> Template:
        return page(
            request, "binding_form", status=status, user=principal,
            platforms=await inventory.list_platforms(), heirs=await inventory.list_heirs(principal.owner_id),
            binding_types=[t.value for t in BindingType], dispositions=[d.value for d in Disposition], **extra,
        )

    @get("/bindings/new")
    async def new_binding(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return await self._binding_form(request, principal, binding=None)

    @post("/bindings")
    async def create_binding(self, request: Request, principal: NamedDependency[Principal],
                             data: URLEncodedBody[BindingForm]) -> Response:
        try:
            await inventory.add_binding(principal.owner_id, data.to_input())
        except HeirlineError as exc:
            return await self._binding_form(request, principal, status=exc.status, binding=None,
                                             form=data, error=_error_text(request, exc))
        return Redirect(path="/inventory", status_code=303)

    @get("/bindings/{binding_id:uuid}/edit")
    async def edit_binding_form(self, request: Request, principal: NamedDependency[Principal],
                                binding_id: FromPath[uuid.UUID]) -> Template:
        binding = await inventory.get_binding(principal.owner_id, binding_id)
        return await self._binding_form(request, principal, binding=binding)

    @post("/bindings/{binding_id:uuid}")
    async def update_binding(self, request: Request, principal: NamedDependency[Principal],
                             binding_id: FromPath[uuid.UUID], data: URLEncodedBody[BindingForm]) -> Response:
        try:
            await inventory.edit_binding(principal.owner_id, binding_id, data.to_input())
        except HeirlineError as exc:
            if exc.status == 404:
                raise
            binding = await inventory.get_binding(principal.owner_id, binding_id)
            return await self._binding_form(request, principal, status=exc.status, binding=binding,
                                             form=data, error=_error_text(request, exc))
        return Redirect(path="/inventory", status_code=303)

    @post("/bindings/{binding_id:uuid}/delete")
    async def delete_binding(self, principal: NamedDependency[Principal], binding_id: FromPath[uuid.UUID]) -> Redirect:
        await inventory.remove_binding(principal.owner_id, binding_id)
        return Redirect(path="/inventory", status_code=303)

    @post("/heirs", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def add_heir(self, request: Request, principal: NamedDependency[Principal],
                       data: URLEncodedBody[HeirForm]) -> Response:
        try:
            await inventory.add_heir(principal.owner_id, data.name, data.email, data.relationship,
                                     data.phone_number or None, data.is_executor == "on")
        except HeirlineError as exc:
            return await self._inventory(request, principal, status=exc.status, heir_form=data,
                                         heir_error=_error_text(request, exc))
        return Redirect(path="/inventory#heirs", status_code=303)

    @post("/heirs/{heir_id:uuid}/delete", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def remove_heir(self, request: Request, principal: NamedDependency[Principal],
                          heir_id: FromPath[uuid.UUID]) -> Response:
        try:
            await inventory.remove_heir(principal.owner_id, heir_id)
        except HeirlineError as exc:
            if exc.status == 404:
                raise
            return await self._inventory(request, principal, status=exc.status, heir_error=_error_text(request, exc))
        return Redirect(path="/inventory#heirs", status_code=303)

    @post("/contacts", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def add_contact(self, request: Request, principal: NamedDependency[Principal],
                          data: URLEncodedBody[ContactForm]) -> Response:
        try:
            await inventory.add_contact(principal.owner_id, principal.e164, data.kind, data.address)
        except HeirlineError as exc:
            return await self._inventory(request, principal, status=exc.status, contact_form=data,
                                         contact_error=_error_text(request, exc))
        return Redirect(path="/inventory#contacts", status_code=303)

    @post("/contacts/{contact_id:uuid}/delete", dependencies={"principal": Provide(stepped_up_page_principal)})
    async def remove_contact(self, request: Request, principal: NamedDependency[Principal],
                             contact_id: FromPath[uuid.UUID]) -> Response:
        try:
            await inventory.remove_contact(principal.owner_id, contact_id)
        except HeirlineError as exc:
            if exc.status == 404:
                raise
            return await self._inventory(request, principal, status=exc.status,
                                         contact_error=_error_text(request, exc))
        return Redirect(path="/inventory#contacts", status_code=303)

    @get("/step-up")
    async def step_up_form(self, request: Request, principal: NamedDependency[Principal],
                           next: FromQuery[str | None] = None, sent: FromQuery[str | None] = None) -> Template:
        return page(request, "step_up", user=principal, next=_safe_next(next), sent=bool(sent))

    @post("/step-up/code")
    async def step_up_code(self, request: Request, principal: NamedDependency[Principal],
                           data: URLEncodedBody[CodeForm]) -> Response:
        try:
            await codes.send_code(normalize(principal.e164), codes.Purpose.STEP_UP, client=client_of(request),
                                  locale=lang_of(request))
        except HeirlineError as exc:
            return page(request, "step_up", status=exc.status, user=principal, next=_safe_next(data.next),
                        sent=False, error=_error_text(request, exc))
        return Redirect(path=f"/step-up?sent=1&next={quote(_safe_next(data.next))}", status_code=303)

    @post("/step-up")
    async def step_up(self, request: Request, principal: NamedDependency[Principal],
                      data: URLEncodedBody[StepUpForm]) -> Response:
        try:
            await accounts.step_up(principal, data.password, data.code.strip(), client=client_of(request))
        except HeirlineError as exc:
            return page(request, "step_up", status=exc.status, user=principal, next=_safe_next(data.next),
                        sent=True, error=_error_text(request, exc))
        return Redirect(path=_safe_next(data.next), status_code=303)

    @get("/activity")
    async def activity(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return page(request, "activity", user=principal, entries=await inventory.audit_trail(principal.owner_id))
