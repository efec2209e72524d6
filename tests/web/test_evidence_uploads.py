"""Evidence uploads: the bytes decide the type, active content is refused, metadata is stripped,
the file is stored encrypted and only ever served as an attachment to a reviewer."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.storage.tables import Evidence
from tests.support import PNG, confirmed_heir, reviewer, upload


def pdf_bytes(with_metadata: bool = True) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if with_metadata:
        writer.add_metadata({"/Author": "Zhang Wei", "/Title": "Medical record"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with(active: bytes) -> bytes:
    body = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            b"3 0 obj << /S " + active + b" >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    return body


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (80, 60), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
async def claim(client, owner):
    heir = await confirmed_heir(client, owner, "claimant@example.com")
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=heir.headers)).json()
    return heir, case


async def test_a_renamed_executable_is_refused(client, claim):
    heir, case = claim
    fake = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode"
    response = await upload(client, heir, case["id"], fake, "death-certificate.pdf", content_type="application/pdf")
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await Evidence.count() == 0


async def test_an_oversized_file_is_refused(client, claim):
    heir, case = claim
    response = await upload(client, heir, case["id"], PNG + b"\x00" * (10 * 1024 * 1024))
    assert response.status_code == 413
    assert await Evidence.count() == 0


@pytest.mark.parametrize("active", [b"/JavaScript /JS (app.alert(1))", b"/J#61vaScript /J#53 (app.alert(1))",
                                    b"/Launch /F (calc.exe)"])
async def test_a_pdf_with_active_content_is_refused(client, claim, active):
    heir, case = claim
    response = await upload(client, heir, case["id"], pdf_with(active), "scan.pdf", content_type="application/pdf")
    assert response.status_code == 422, response.text
    assert await Evidence.count() == 0


async def test_an_unreadable_file_and_a_bad_kind_are_refused(client, claim):
    heir, case = claim
    assert (await upload(client, heir, case["id"], b"%PDF-1.7 garbage", "x.pdf")).status_code == 415
    assert (await upload(client, heir, case["id"], PNG, kind="selfie")).status_code == 400
    missing = await client.post(f"/v1/claims/{case['id']}/evidence", headers=heir.headers, data={"kind": "other"})
    assert missing.status_code == 400
    assert await Evidence.count() == 0


async def test_photo_loses_its_exif_location_and_the_pdf_its_metadata(client, claim):
    heir, case = claim
    photo = jpeg_with_gps()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # the original has a GPS position
    assert (await upload(client, heir, case["id"], photo, "photo.jpg", content_type="image/jpeg")).status_code == 201
    assert (await upload(client, heir, case["id"], pdf_bytes(), "record.pdf", kind="court_order",
                         content_type="application/pdf")).status_code == 201
    staff = await reviewer(client)
    shown = (await client.get(f"/v1/review/claims/{case['id']}", headers=staff.headers)).json()
    by_type = {e["media_type"]: e for e in shown["evidence"]}
    assert set(by_type) == {"image/jpeg", "application/pdf"}

    served = await client.get(f"/v1/review/claims/{case['id']}/evidence/{by_type['image/jpeg']['id']}",
                              headers=staff.headers)
    assert served.status_code == 200
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-type"] == "image/jpeg"
    cleaned = Image.open(io.BytesIO(served.content))
    assert not cleaned.getexif() and b"PhoneMaker" not in served.content
    assert cleaned.size == (80, 60)

    pdf = await client.get(f"/v1/review/claims/{case['id']}/evidence/{by_type['application/pdf']['id']}",
                           headers=staff.headers)
    assert pdf.content.startswith(b"%PDF") and b"Zhang Wei" not in pdf.content and b"Medical record" not in pdf.content

    for row in await Evidence.select(Evidence.content_ct):  # stored encrypted
        assert b"JFIF" not in bytes(row["content_ct"]) and b"%PDF" not in bytes(row["content_ct"])


async def test_only_the_claimant_uploads_and_only_before_the_decision(client, owner, claim):
    heir, case = claim
    other = await confirmed_heir(client, owner, "sibling@example.com", "李华", password="blue kite over hills")
    assert (await upload(client, other, case["id"])).status_code == 404
    assert (await client.post(f"/v1/claims/{case['id']}/evidence", headers=owner.headers,
                              files={"file": ("a.png", PNG, "image/png")}, data={"kind": "other"})).status_code == 403
    await client.post(f"/v1/claims/{case['id']}/veto", headers=owner.headers)
    assert (await upload(client, heir, case["id"])).status_code == 409
    assert await Evidence.count() == 0
