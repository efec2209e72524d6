"""New holders (counts, unbind requests, harassment reports) and the recycling checks for machine clients."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.api.schemas import (
    CamaraAnswer, CamaraCheck, HarassmentCreate, HarassmentOut, NewHolderStatusOut, RecyclingCheck, RecyclingResults,
    UnbindRequestOut, out,
)
from app.domain.recycling import CamaraError
from app.errors import AuthenticationFailed
from app.services import clients, new_holders, recycling
from app.services.accounts import Principal, resolve_session
from app.services.recycling import Asker
from app.web.auth import bearer_token, new_holder_api_principal

MACHINE_KINDS = ("caller", "platform", "carrier")


async def machine_asker(request: Request) -> Asker:
    """A caller's, platform's or carrier's API token."""
    token = bearer_token(request)
    for kind in MACHINE_KINDS:
        client_id = await clients.resolve(token, kind)
        if client_id is not None:
            return Asker(kind, client_id)
    raise AuthenticationFailed("send a caller, platform or carrier API token: Authorization: Bearer <token>")


class NewHolderSelf(Controller):
    path = "/v1/me"
    tags = ["New holders"]
    dependencies = {"principal": Provide(new_holder_api_principal)}

    @get("/number-status", summary="Is my number recycled, since when, and how many platforms still owe an unbind",
         description="Counts only: nothing of a previous holder (no platform list, names or dates of their accounts).")
    async def status(self, principal: NamedDependency[Principal]) -> NewHolderStatusOut:
        return out(await new_holders.number_status(principal), NewHolderStatusOut)

    @post("/unbind-requests", status_code=202,
          summary="Ask the platforms that still owe an unbind for earlier holders (RISC identifier-recycled)")
    async def request_unbinding(self, principal: NamedDependency[Principal]) -> Response[UnbindRequestOut]:
        request, new = await new_holders.request_unbinding(principal)
        return Response(out(request, UnbindRequestOut), status_code=202 if new else 200)

    @get("/unbind-requests/{request_id:uuid}", summary="Progress of my unbind request")
    async def unbind_request(self, principal: NamedDependency[Principal],
                             request_id: FromPath[uuid.UUID]) -> UnbindRequestOut:
        return out(await new_holders.unbind_request(principal, request_id), UnbindRequestOut)

    @post("/harassment-reports", status_code=201, summary="Report a call or message meant for a previous holder")
    async def report(self, principal: NamedDependency[Principal], data: JSONBody[HarassmentCreate]) -> HarassmentOut:
        return out(await new_holders.report_harassment(principal, data.kind, data.caller_number, data.note,
                                                       data.occurred_on), HarassmentOut)

    @get("/harassment-reports", summary="How many reports this number has, and mine")
    async def reports(self, principal: NamedDependency[Principal]) -> HarassmentOut:
        return out(await new_holders.harassment(principal), HarassmentOut)


class ReassignedNumbers(Controller):
    path = "/v1/numbers"
    tags = ["Recycling checks"]

    @post("/recycling:check", status_code=200, dependencies={"asker": Provide(machine_asker)},
          summary="Reassigned-numbers check: was each number permanently disconnected on or after `since`?",
          description="Up to 1,000 queries -> `yes`, `no` or `no_data` (before the carrier's data begins). A number "
          "no carrier reports answers exactly like one registered here by its owner. Charged to the client's daily "
          "quota; every answer is logged per client.")
    async def check(self, asker: NamedDependency[Asker], data: JSONBody[RecyclingCheck]) -> RecyclingResults:
        queries = [{"phone_number": q.phone_number, "since": q.since} for q in data.queries]
        return out({"results": await recycling.reassigned(asker, queries)}, RecyclingResults)


class CamaraNumberRecycling(Controller):
    path = "/number-recycling/v0.2"
    tags = ["Recycling checks"]

    @post("/check", status_code=200, summary="CAMARA Number Recycling v0.2",
          description="2-legged tokens (caller, platform, carrier) send `phoneNumber`; a new holder's session "
          "(3-legged) must not. Errors are CAMARA `{status, code, message}`.")
    async def check(self, request: Request, data: JSONBody[CamaraCheck]) -> CamaraAnswer:
        token = bearer_token(request)
        bound = None
        asker = None
        for kind in MACHINE_KINDS:
            client_id = await clients.resolve(token, kind)
            if client_id is not None:
                asker = Asker(kind, client_id)
                break
        if asker is None:
            principal = await resolve_session(token)
            if principal is None or principal.kind != "new_holder":
                raise CamaraError(401, "UNAUTHENTICATED", "request not authenticated due to missing, invalid, or "
                                  "expired credentials")
            asker, bound = Asker("new_holder", principal.tenure_id), principal.e164
        body = {"specifiedDate": data.specifiedDate}
        if isinstance(data.phoneNumber, str):
            body["phoneNumber"] = data.phoneNumber
        return CamaraAnswer(phoneNumberRecycled=await recycling.camara(asker, body, bound_e164=bound))
