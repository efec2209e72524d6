"""What platforms call: the Shared Signals transmitter (SSF 1.0), poll delivery, and outcomes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta, Struct

from app.crypto import sets
from app.domain import notices as rules
from app.services import notices, streams
from app.settings import get_settings
from app.web.auth import bearer_token

TAG = "Platforms (Shared Signals)"
NO_STORE = {"Cache-Control": "no-store"}


async def platform_from_token(request: Request) -> dict:
    return await streams.platform_by_token(bearer_token(request))


@get("/.well-known/ssf-configuration", tags=[TAG], summary="SSF 1.0 transmitter metadata")
async def ssf_configuration() -> dict[str, Any]:
    issuer = get_settings().issuer
    return {
        "spec_version": "1_0", "issuer": issuer, "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "delivery_methods_supported": [rules.PUSH, rules.POLL],
        "configuration_endpoint": f"{issuer}/ssf/streams", "status_endpoint": f"{issuer}/ssf/status",
        "add_subject_endpoint": f"{issuer}/ssf/subjects:add", "remove_subject_endpoint": f"{issuer}/ssf/subjects:remove",
        "verification_endpoint": f"{issuer}/ssf/verify",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}], "default_subjects": "NONE",
    }


@get("/.well-known/jwks.json", tags=[TAG], summary="Keys that sign our SETs")
async def jwks() -> dict[str, Any]:
    return await sets.jwks()


class StreamManagement(Controller):
    path = "/ssf"
    tags = [TAG]
    dependencies = {"platform": Provide(platform_from_token)}

    @post("/streams", status_code=201, summary="Create the platform's stream")
    async def create(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> Response:
        return Response(await streams.create(platform, data), status_code=201, headers=NO_STORE)

    @get("/streams", summary="Read the stream (or the list of streams without stream_id)")
    async def read(self, platform: NamedDependency[dict], stream_id: FromQuery[str | None] = None) -> Response:
        return Response(await streams.read(platform, stream_id), headers=NO_STORE)

    @patch("/streams", summary="Update receiver-supplied properties")
    async def update(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> Response:
        return Response(await streams.update(platform, data, replace=False), headers=NO_STORE)

    @put("/streams", summary="Replace receiver-supplied properties")
    async def replace(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> Response:
        return Response(await streams.update(platform, data, replace=True), headers=NO_STORE)

    @delete("/streams", status_code=204, summary="Delete the stream")
    async def remove(self, platform: NamedDependency[dict], stream_id: FromQuery[str | None] = None) -> None:
        await streams.delete(platform, stream_id)

    @get("/status", summary="Stream status")
    async def status(self, platform: NamedDependency[dict], stream_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return await streams.status(platform, stream_id)

    @post("/status", status_code=200, summary="Change stream status (enabled, paused, disabled)")
    async def set_status(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return await streams.set_status(platform, data)

    @post("/subjects:add", status_code=200, summary="Add a phone number to the stream")
    async def add_subject(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> None:
        await streams.add_subject(platform, data)

    @post("/subjects:remove", status_code=204, summary="Remove a phone number from the stream")
    async def remove_subject(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> None:
        await streams.remove_subject(platform, data)

    @post("/verify", status_code=204, summary="Send the SSF verification event")
    async def verify(self, platform: NamedDependency[dict], data: JSONBody[dict[str, Any]]) -> None:
        await streams.verify(platform, data)

    @post("/poll/{stream_id:str}", status_code=200, summary="Poll delivery (RFC 8936)")
    async def poll(self, platform: NamedDependency[dict], stream_id: FromPath[str],
                   data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return await notices.poll(platform, stream_id, data)


class OutcomeReport(Struct, forbid_unknown_fields=True):
    result: Literal["unbound", "handed_over", "memorialized", "deleted", "no_account", "refused", "deferred"]
    completed_at: dt.datetime | None = None
    detail: Annotated[str, Meta(max_length=500)] = ""


class OutcomeOut(Struct):
    case_id: str
    platform_id: str
    result: str
    completed_at: dt.datetime
    detail: str


class Outcomes(Controller):
    path = "/v1/cases"
    tags = [TAG]
    dependencies = {"platform": Provide(platform_from_token)}

    @post("/{case_id:uuid}/outcomes", status_code=201, summary="Report what the platform did for a case",
          description="Idempotent per case and platform: the same report again answers 200; `deferred` may be "
          "followed by a final result; a different final result is 409.")
    async def report(self, platform: NamedDependency[dict], case_id: FromPath[uuid.UUID],
                     data: JSONBody[OutcomeReport]) -> Response[OutcomeOut]:
        completed = data.completed_at or dt.datetime.now(dt.timezone.utc)
        if completed.tzinfo is None:
            completed = completed.replace(tzinfo=dt.timezone.utc)
        outcome, created = await notices.report_outcome(platform, case_id, data.result, completed, data.detail)
        return Response(OutcomeOut(**outcome), status_code=201 if created else 200)
