"""The people's API for owners: codes, sign-up, sessions, inventory, heirs, contacts, audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.api.schemas import (
    AccountDeletion,
    StepUp,
    Accepted,
    AuditEntry,
    BindingCreate,
    BindingOut,
    BindingPatch,
    CodeRequest,
    ContactCreate,
    ContactOut,
    HeirCreate,
    HeirOut,
    NumberStatusOut,
    OwnerCreate,
    OwnerCreated,
    PlatformOut,
    SessionCreate,
    SessionCreated,
    out,
)
from app.domain.numbers import normalize
from app.services import accounts, codes, inventory, privacy
from app.services.accounts import Principal
from app.settings import get_settings
from app.errors import InvalidRequest
from app.web.auth import any_api_principal, api_principal, bearer_token, client_of, stepped_up_api_principal
from app.web.i18n import negotiate

TAG_AUTH = "Owners: sign-up and sessions"
TAG_INVENTORY = "Owners: inventory"


class CodesAndSessions(Controller):
    path = "/v1"
    tags = [TAG_AUTH]

    @post("/otp", status_code=202, summary="Send a one-time code to a number (or, for accounts, to an e-mail)",
          description="With `email` instead of `phone_number` and purpose `login`: the second factor of an "
          "heir's, executor's or reviewer's login. The answer is the same whether the e-mail has an account.")
    async def request_code(self, request: Request, data: JSONBody[CodeRequest]) -> Accepted:
        lang = negotiate(None, request.headers.get("accept-language"))
        if isinstance(data.email, str):
            if data.purpose != "login" or isinstance(data.phone_number, str):
                raise InvalidRequest("an e-mail takes only `login` codes, and not together with phone_number",
                                     field="email")
            await accounts.send_account_code(data.email, client=client_of(request), locale=lang)
            return Accepted()
        if not isinstance(data.phone_number, str):
            raise InvalidRequest("phone_number is required", field="phone_number")
        number = normalize(data.phone_number, get_settings().default_region)
        await codes.send_code(number, codes.purpose(data.purpose), client=client_of(request), locale=lang)
        return Accepted()

    @post("/owners", status_code=201, summary="Sign up: number + code + password + e-mail")
    async def sign_up(self, request: Request, data: JSONBody[OwnerCreate]) -> OwnerCreated:
        lang = negotiate(None, request.headers.get("accept-language"))
        owner_id, token = await accounts.sign_up(
            data.phone_number, data.code, data.password, data.email, client=client_of(request),
            locale=lang, user_agent=request.headers.get("user-agent", ""),
        )
        return OwnerCreated(owner_id=owner_id, token=token)

    @post("/sessions", status_code=201, summary="Log in: password, and a `login` code as second factor",
          description="Owners send `phone_number`; heirs, executors and reviewers send `email` instead.")
    async def log_in(self, request: Request, data: JSONBody[SessionCreate]) -> SessionCreated:
        agent, client = request.headers.get("user-agent", ""), client_of(request)
        has_phone, has_email = isinstance(data.phone_number, str), isinstance(data.email, str)
        has_password = isinstance(data.password, str)
        if data.purpose == "new_holder":
            if not has_phone or has_email or has_password:
                raise InvalidRequest("a new holder sends phone_number and the `new_holder` code only")
            token = await accounts.new_holder_session(data.phone_number, data.code, client=client, user_agent=agent)
        elif not has_password:
            raise InvalidRequest("password is required", field="password")
        elif has_email and not has_phone:
            token = await accounts.log_in_account(data.email, data.password, data.code, client=client,
                                                  user_agent=agent)
        elif has_phone and not has_email:
            token = await accounts.log_in(data.phone_number, data.password, data.code, client=client,
                                          user_agent=agent)
        else:
            raise InvalidRequest("send either phone_number (owners) or email (heirs and reviewers)")
        return SessionCreated(token=token)

    @delete("/sessions/current", status_code=204, summary="Log out (revokes the bearer token)",
            dependencies={"principal": Provide(any_api_principal)})
    async def log_out(self, request: Request, principal: NamedDependency[Principal]) -> None:
        await accounts.log_out(bearer_token(request) or "")


class Catalog(Controller):
    path = "/v1/platforms"
    tags = ["Catalog"]

    @get("/", summary="The platform catalog owners pick from")
    async def platforms(self) -> list[PlatformOut]:
        return out(await inventory.list_platforms(), list[PlatformOut])


def _binding_input(data: BindingCreate | BindingPatch) -> inventory.BindingInput:
    values = {f: getattr(data, f) for f in data.__struct_fields__}
    return inventory.BindingInput(**{k: (inventory.UNSET if v is msgspec.UNSET else v) for k, v in values.items()})


class Inventory(Controller):
    path = "/v1/me"
    tags = [TAG_INVENTORY]
    dependencies = {"principal": Provide(api_principal)}

    @get("/bindings", summary="List my bindings")
    async def list_bindings(self, principal: NamedDependency[Principal]) -> list[BindingOut]:
        return out(await inventory.list_bindings(principal.owner_id), list[BindingOut])

    @post("/bindings", status_code=201, summary="Add a binding")
    async def add_binding(self, principal: NamedDependency[Principal], data: JSONBody[BindingCreate]) -> BindingOut:
        return out(await inventory.add_binding(principal.owner_id, _binding_input(data)), BindingOut)

    @get("/bindings/{binding_id:uuid}", summary="Read one of my bindings")
    async def get_binding(self, principal: NamedDependency[Principal], binding_id: FromPath[uuid.UUID]) -> BindingOut:
        return out(await inventory.get_binding(principal.owner_id, binding_id), BindingOut)

    @patch("/bindings/{binding_id:uuid}", summary="Change one of my bindings")
    async def edit_binding(self, principal: NamedDependency[Principal], binding_id: FromPath[uuid.UUID],
                           data: JSONBody[BindingPatch]) -> BindingOut:
        return out(await inventory.edit_binding(principal.owner_id, binding_id, _binding_input(data)), BindingOut)

    @delete("/bindings/{binding_id:uuid}", status_code=204, summary="Remove one of my bindings")
    async def remove_binding(self, principal: NamedDependency[Principal], binding_id: FromPath[uuid.UUID]) -> None:
        await inventory.remove_binding(principal.owner_id, binding_id)

    @get("/heirs", summary="List my heirs")
    async def list_heirs(self, principal: NamedDependency[Principal]) -> list[HeirOut]:
        return out(await inventory.list_heirs(principal.owner_id), list[HeirOut])

    @post("/heirs", status_code=201, dependencies={"principal": Provide(stepped_up_api_principal)}, summary="Name an heir: an invitation link goes to their e-mail (and number)")
    async def add_heir(self, principal: NamedDependency[Principal], data: JSONBody[HeirCreate]) -> HeirOut:
        heir = await inventory.add_heir(principal.owner_id, data.name, data.email, data.relationship,
                                        data.phone_number, data.is_executor)
        return out(heir, HeirOut)

    @delete("/heirs/{heir_id:uuid}", status_code=204, dependencies={"principal": Provide(stepped_up_api_principal)},
            summary="Revoke an heir, at any time (what was left to them falls back to the next confirmed heir)")
    async def remove_heir(self, principal: NamedDependency[Principal], heir_id: FromPath[uuid.UUID]) -> None:
        await inventory.remove_heir(principal.owner_id, heir_id)

    @get("/contacts", summary="My contact channels besides the number")
    async def list_contacts(self, principal: NamedDependency[Principal]) -> list[ContactOut]:
        return out(await inventory.list_contacts(principal.owner_id), list[ContactOut])

    @post("/contacts", status_code=201, dependencies={"principal": Provide(stepped_up_api_principal)}, summary="Add a contact channel")
    async def add_contact(self, principal: NamedDependency[Principal], data: JSONBody[ContactCreate]) -> ContactOut:
        return out(await inventory.add_contact(principal.owner_id, principal.e164, data.kind, data.address),
                   ContactOut)

    @delete("/contacts/{contact_id:uuid}", status_code=204, dependencies={"principal": Provide(stepped_up_api_principal)},
            summary="Remove a contact channel (not the last)")
    async def remove_contact(self, principal: NamedDependency[Principal], contact_id: FromPath[uuid.UUID]) -> None:
        await inventory.remove_contact(principal.owner_id, contact_id)

    @get("/number", summary="My number's state and the tasks of its release case")
    async def number(self, principal: NamedDependency[Principal]) -> NumberStatusOut:
        return out(await inventory.number_status(principal.owner_id), NumberStatusOut)

    @get("/audit", summary="The audit trail of my account, newest first")
    async def audit_trail(self, principal: NamedDependency[Principal]) -> list[AuditEntry]:
        return out(await inventory.audit_trail(principal.owner_id), list[AuditEntry])


class OwnerData(Controller):
    path = "/v1/me"
    tags = [TAG_AUTH]
    dependencies = {"principal": Provide(api_principal)}

    @get("/export", summary="Everything Heirline holds about me, machine-readable (logged)")
    async def export(self, principal: NamedDependency[Principal]) -> dict[str, Any]:
        return await privacy.export(principal.owner_id)

    @post("/step-up", status_code=204, summary="Confirm it is me: password and a `step_up` code",
          description="Needed within 15 minutes before changing contacts, heirs or the veto window; a fresh "
          "login counts. Ask for the code with POST /v1/otp (purpose step_up).")
    async def step_up(self, request: Request, principal: NamedDependency[Principal], data: JSONBody[StepUp]) -> None:
        await accounts.step_up(principal, data.password, data.code, client=client_of(request))

    @post("/deletion", status_code=204, summary="Delete my account: bindings, heirs, contacts; my data key is shredded")
    async def delete(self, principal: NamedDependency[Principal], data: JSONBody[AccountDeletion]) -> None:
        await privacy.delete(principal.owner_id, data.password)
