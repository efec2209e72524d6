"""The people's API for legacy: invitations, heirs' confirmation, claims, evidence, veto, review, handovers."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, MultipartBody

from app.api.schemas import (
    Accepted, ClaimCreate, ClaimOut, Decision, DesignationOut, EvidenceOut, HandoverAccountOut, HandoverOut,
    InvitationAccept, InvitationOut, LegacySettings, LegacySettingsOut, ReviewCaseOut, SessionCreated, out,
)
from app.domain.evidence import MAX_BYTES, MAX_REQUEST_BYTES
from app.errors import InvalidRequest, PayloadTooLarge
from app.services import heirs, legacy
from app.services.accounts import Principal
from app.web.auth import (
    account_api_principal, any_api_principal, api_principal, client_of, reviewer_api_principal,
    stepped_up_api_principal,
)
from app.web.i18n import negotiate

TAG_HEIRS = "Heirs and executors"
TAG_REVIEW = "Reviewers"


class Invitations(Controller):
    path = "/v1/invitations"
    tags = [TAG_HEIRS]

    @get("/{token:str}", summary="Who invites me, to what (the link from the invitation)")
    async def show(self, token: FromPath[str]) -> InvitationOut:
        return out(await heirs.invitation(token), InvitationOut)

    @post("/{token:str}/accept", status_code=201,
          summary="Accept: a new password creates the heir's account; an existing account gives its password")
    async def accept(self, request: Request, token: FromPath[str], data: JSONBody[InvitationAccept]) -> SessionCreated:
        session = await heirs.accept(token, data.password, client=client_of(request),
                                     locale=negotiate(None, request.headers.get("accept-language")),
                                     user_agent=request.headers.get("user-agent", ""))
        return SessionCreated(token=session)


class OwnerLegacy(Controller):
    """What the owner does about heirs and claims (owner sessions)."""

    path = "/v1/me"
    tags = ["Owners: heirs and claims"]
    dependencies = {"principal": Provide(api_principal)}

    @post("/heirs/{heir_id:uuid}/confirm", status_code=200, dependencies={"principal": Provide(stepped_up_api_principal)}, summary="Confirm an heir who accepted")
    async def confirm(self, principal: NamedDependency[Principal], heir_id: FromPath[uuid.UUID]) -> Accepted:
        await heirs.confirm(principal.owner_id, heir_id)
        return Accepted(status="confirmed")

    @post("/heirs/{heir_id:uuid}/invitation", status_code=202, dependencies={"principal": Provide(stepped_up_api_principal)}, summary="Send the invitation again (a new link)")
    async def resend(self, principal: NamedDependency[Principal], heir_id: FromPath[uuid.UUID]) -> Accepted:
        await heirs.resend(principal.owner_id, heir_id)
        return Accepted()

    @get("/legacy-settings", summary="My veto window")
    async def settings(self, principal: NamedDependency[Principal]) -> LegacySettingsOut:
        return out(await legacy.legacy_settings(principal.owner_id), LegacySettingsOut)

    @put("/legacy-settings", dependencies={"principal": Provide(stepped_up_api_principal)}, summary="Choose my veto window (1, 3, 7, 14 or 30 days)")
    async def set_settings(self, principal: NamedDependency[Principal],
                           data: JSONBody[LegacySettings]) -> LegacySettingsOut:
        return out(await legacy.set_veto_days(principal.owner_id, data.veto_window_days), LegacySettingsOut)

    @get("/claims", summary="Claims that reported my death, newest first")
    async def claims(self, principal: NamedDependency[Principal]) -> list[ClaimOut]:
        return out(await legacy.owner_cases(principal.owner_id), list[ClaimOut])


class HeirSelf(Controller):
    """What an heir or executor sees (account sessions)."""

    path = "/v1/me"
    tags = [TAG_HEIRS]
    dependencies = {"principal": Provide(account_api_principal)}

    @get("/designations", summary="Whose heir or executor I am")
    async def designations(self, principal: NamedDependency[Principal]) -> list[DesignationOut]:
        return out(await heirs.designations(principal.account_id), list[DesignationOut])

    @get("/handovers", summary="What an approved case left to me: my accounts and instructions only (logged)")
    async def handovers(self, principal: NamedDependency[Principal]) -> list[HandoverOut]:
        return out(await legacy.handovers(principal.account_id), list[HandoverOut])

    @get("/handovers/{item_id:uuid}", summary="One account left to me (logged)")
    async def handover(self, principal: NamedDependency[Principal], item_id: FromPath[uuid.UUID]) -> HandoverAccountOut:
        return out(await legacy.handover_item(principal.account_id, item_id), HandoverAccountOut)

    @post("/handovers/{item_id:uuid}/done", status_code=200, summary="I handled this account")
    async def done(self, principal: NamedDependency[Principal], item_id: FromPath[uuid.UUID]) -> HandoverAccountOut:
        return out(await legacy.mark_done(principal.account_id, item_id), HandoverAccountOut)


class Claims(Controller):
    path = "/v1/claims"
    tags = [TAG_HEIRS]

    @post("/", status_code=201, summary="Open a claim: the owner's death, reported by a confirmed heir or executor",
          dependencies={"principal": Provide(account_api_principal)})
    async def open(self, principal: NamedDependency[Principal], data: JSONBody[ClaimCreate]) -> ClaimOut:
        return out(await legacy.open_claim(principal.account_id, phone_number=data.phone_number,
                                           heir_id=data.heir_id, note=data.note), ClaimOut)

    @get("/{case_id:uuid}", summary="A claim, as its claimant, an heir of that owner, or the owner sees it",
         dependencies={"principal": Provide(any_api_principal)})
    async def show(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID]) -> ClaimOut:
        return out(await legacy.claim_view(principal, case_id), ClaimOut)

    @post("/{case_id:uuid}/evidence", status_code=201, request_max_body_size=MAX_REQUEST_BYTES,
          summary="Upload evidence (multipart: `file`, `kind`): PDF, JPEG or PNG up to 10 MiB",
          description="The type is judged from the bytes; PDFs with scripts are refused (422); photos lose "
          "their EXIF metadata. Stored encrypted, never served inline.",
          dependencies={"principal": Provide(account_api_principal)})
    async def evidence(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID],
                       data: MultipartBody[dict[str, Any]]) -> EvidenceOut:
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("send the document as the multipart field `file`", field="file")
        content = await upload.read(MAX_BYTES + 1)
        if len(content) > MAX_BYTES:
            raise PayloadTooLarge(f"a document may be at most {MAX_BYTES // (1024 * 1024)} MiB")
        return out(await legacy.add_evidence(principal.account_id, case_id, data.get("kind"), content), EvidenceOut)

    @post("/{case_id:uuid}/veto", status_code=200, summary="I am alive: cancel this claim (the owner)",
          dependencies={"principal": Provide(api_principal)})
    async def veto(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID]) -> ClaimOut:
        return out(await legacy.veto_by_owner(principal.owner_id, case_id), ClaimOut)


class Review(Controller):
    path = "/v1/review"
    tags = [TAG_REVIEW]
    dependencies = {"principal": Provide(reviewer_api_principal)}

    @get("/claims", summary="The queue: cases in their veto window or waiting for a decision")
    async def queue(self, principal: NamedDependency[Principal]) -> list[ReviewCaseOut]:
        return out(await legacy.review_queue(principal), list[ReviewCaseOut])

    @get("/claims/{case_id:uuid}", summary="A case with its evidence list and the shape of the owner's plan")
    async def show(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID]) -> ReviewCaseOut:
        return out(await legacy.review_case(principal, case_id), ReviewCaseOut)

    @get("/claims/{case_id:uuid}/evidence/{evidence_id:uuid}", summary="Download a document (as an attachment; logged)",
         media_type="application/octet-stream")
    async def document(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID],
                       evidence_id: FromPath[uuid.UUID]) -> Response[bytes]:
        return document_response(*await legacy.evidence_file(principal, case_id, evidence_id))

    @post("/claims/{case_id:uuid}/decision", status_code=200,
          summary="Approve (needs evidence you verified; after the veto window) or reject (with a reason)")
    async def decide(self, principal: NamedDependency[Principal], case_id: FromPath[uuid.UUID],
                     data: JSONBody[Decision]) -> ReviewCaseOut:
        return out(await legacy.decide(principal, case_id, data.decision, data.reason, data.evidence_verified),
                   ReviewCaseOut)


def document_response(media_type: str, content: bytes, name: str) -> Response[bytes]:
    """Never inline: a download with its true type, no sniffing, sandboxed if opened anyway."""
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'", "Cache-Control": "no-store"})
