"""What carriers call: the deactivation hook, the bulk file, and clearance before reissue."""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from app.errors import AccessDenied, InvalidRequest
from app.services import carriers, clearance, imports, ingest, lifecycle
from app.settings import get_settings
from app.web.auth import bearer_token

TAG = "Carriers"


class HookAnswer(Struct):
    case_id: str | None
    status: str
    earliest_clear_at: str | None


class TaskCounts(Struct):
    total: int
    pending: int
    unbound: int
    handed_over: int
    memorialized: int
    deleted: int
    no_account: int
    refused: int
    failed: int


class Handover(Struct):
    required: bool
    completed: bool


class ClearanceError(Struct):
    status: int
    err: str
    detail: str


class ClearanceAnswer(Struct):
    """A number's clearance; in a batch, a number held by another carrier carries only ``error``."""

    phone_number: str
    status: str | UnsetType = UNSET
    case_id: str | None | UnsetType = UNSET
    earliest_clear_at: str | None | UnsetType = UNSET
    blocked_until: str | None | UnsetType = UNSET
    tasks: TaskCounts | UnsetType = UNSET
    handover: Handover | UnsetType = UNSET
    as_of: str | UnsetType = UNSET
    error: ClearanceError | UnsetType = UNSET


class ClearanceQuery(Struct, forbid_unknown_fields=True):
    phone_numbers: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(min_length=1, max_length=1000)]


class ClearanceResults(Struct):
    results: list[ClearanceAnswer]


class ImportError_(Struct):
    line: int
    detail: str


class ImportResult(Struct):
    rows: int
    applied: int
    duplicates: int
    rejected: int
    errors: list[ImportError_]


async def carrier_from_token(request: Request) -> dict:
    return await carriers.by_token(bearer_token(request))


class CarrierHook(Controller):
    path = "/hooks/carriers"
    tags = [TAG]

    @post("/{carrier_id:str}/v1", status_code=202, summary="Number events (Standard Webhooks 1.0 signed)",
          description="Types: number.suspended, number.disconnected, number.restored, number.reassigned, "
          "number.ported_out. 202 for a new event, 200 with the same body for a repeated webhook-id; 400 bad "
          "payload (do not retry), 401 bad signature or stale timestamp, 403 number held by another carrier, "
          "409 impossible transition.")
    async def receive(self, request: Request, carrier_id: FromPath[str]) -> Response[HookAnswer]:
        body = await request.body()
        carrier = await carriers.verify_hook(carrier_id, body, dict(request.headers))
        try:
            payload = json.loads(body)
        except ValueError:
            raise InvalidRequest("the body is not JSON") from None
        webhook_id = request.headers["webhook-id"]
        if len(webhook_id) > 200:
            raise InvalidRequest("webhook-id is longer than 200 characters")
        event = lifecycle.parse_payload(payload, webhook_id, get_settings().default_region,
                                        carrier["jurisdiction"])
        outcome = await ingest.submit(carrier, event)
        if outcome.error is not None:
            raise outcome.error
        return Response(HookAnswer(**outcome.answer), status_code=202 if outcome.result == "applied" else 200)


class CarrierApi(Controller):
    path = "/v1"
    tags = [TAG]
    dependencies = {"carrier": Provide(carrier_from_token)}

    @post("/carriers/{carrier_id:str}/disconnects:batch", status_code=200, request_max_body_size=200 * 1024 * 1024,
          summary="Bulk disconnections as CSV",
          description="Body: text/csv with header phone_number,disconnected_at,reason,aging_ends_at,line_class. "
          "Bad rows are reported by line number and do not stop the good ones; sending the same file again "
          "changes nothing.")
    async def batch(self, request: Request, carrier_id: FromPath[str], carrier: NamedDependency[dict]) -> ImportResult:
        if str(carrier["id"]) != carrier_id:
            raise AccessDenied("a carrier may only import its own disconnections")
        with await imports.spooled(request.stream()) as text, imports.collecting_less():
            summary = await imports.import_disconnections(carrier, text)
        return ImportResult(**summary.as_dict())

    @get("/numbers/{e164:str}/clearance", summary="Is this number clear to reassign?")
    async def one(self, e164: FromPath[str], carrier: NamedDependency[dict]) -> ClearanceAnswer:
        result = await clearance.answer_one(carrier["id"], e164, get_settings().default_region)
        if "error" in result:
            raise AccessDenied(result["error"]["detail"])
        return msgspec.convert(result, ClearanceAnswer)

    @post("/numbers/clearance:query", status_code=200, summary="Clearance for up to 1,000 numbers")
    async def many(self, data: JSONBody[ClearanceQuery], carrier: NamedDependency[dict]) -> ClearanceResults:
        answers = await clearance.answer(carrier["id"], data.phone_numbers, get_settings().default_region)
        return ClearanceResults(results=msgspec.convert(answers, list[ClearanceAnswer]))
