"""Evidence uploads: what we accept, judged from the bytes, and how it is cleaned before storage.

A death certificate or court order arrives as a PDF or a photo. The declared name and type are
ignored: the first bytes decide. PDFs with active content (JavaScript, launch actions, embedded files,
forms that run scripts) are refused; accepted PDFs are rewritten page by page without document
metadata. Photos are decoded and encoded again, which drops EXIF (camera, GPS location), XMP and text
chunks. Pure functions: the service stores the result encrypted.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from app.errors import InvalidRequest, PayloadTooLarge, UnsafeContent, UnsupportedMedia

MAX_BYTES = 10 * 1024 * 1024
MAX_REQUEST_BYTES = MAX_BYTES + 64 * 1024  # the document and the multipart form around it
MAX_PIXELS = 40_000_000
KINDS = ("death_certificate", "court_order", "other")

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
SIGNATURES = ((b"%PDF-", PDF), (b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))
EXTENSIONS = {PDF: "pdf", JPEG: "jpg", PNG: "png"}

# names that make a PDF do something when opened or clicked
ACTIVE_NAMES = (b"/JavaScript", b"/JS", b"/Launch", b"/EmbeddedFile", b"/EmbeddedFiles", b"/RichMedia",
                b"/XFA", b"/SubmitForm", b"/ImportData", b"/GoToE")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class CleanFile:
    media_type: str
    content: bytes


def kind(value: object) -> str:
    if value not in KINDS:
        raise InvalidRequest(f"kind is one of {', '.join(KINDS)}", field="kind")
    return str(value)


def sniff(data: bytes) -> str | None:
    for signature, media_type in SIGNATURES:
        if data.startswith(signature):
            return media_type
    return None


def clean(data: bytes) -> CleanFile:
    """Check an upload and return it stripped of metadata; 413, 415 or 422 otherwise."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"a document may be at most {MAX_BYTES // (1024 * 1024)} MiB")
    if not data:
        raise InvalidRequest("the file is empty", field="file")
    media_type = sniff(data)
    if media_type is None:
        raise UnsupportedMedia("upload a PDF, JPEG or PNG file (the file's content decides, not its name)")
    if media_type == PDF:
        return CleanFile(PDF, _clean_pdf(data))
    return CleanFile(media_type, _clean_image(data, media_type))


def _active_content(data: bytes) -> bytes | None:
    plain = _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)
    for name in ACTIVE_NAMES:
        if re.search(re.escape(name) + rb"(?![A-Za-z0-9])", plain):
            return name
    return None


def _clean_pdf(data: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError

    if _active_content(data):
        raise UnsafeContent("this PDF contains scripts or other active content; upload a plain scan or a photo")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UnsafeContent("this PDF is password-protected; upload an unprotected copy")
        writer = PdfWriter()
        for page in reader.pages:
            for key in ("/Metadata", "/PieceInfo", "/AA"):
                if key in page:
                    del page[key]
            writer.add_page(page)
        if not writer.pages:
            raise InvalidRequest("this PDF has no pages", field="file")
        writer.add_metadata({"/Producer": "Heirline"})
        out = io.BytesIO()
        writer.write(out)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise UnsupportedMedia("this PDF cannot be read; upload another copy") from exc
    cleaned = out.getvalue()
    if _active_content(cleaned):  # hidden in objects the first scan could not see (e.g. compressed)
        raise UnsafeContent("this PDF contains scripts or other active content; upload a plain scan or a photo")
    return cleaned


def _clean_image(data: bytes, media_type: str) -> bytes:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise UnsafeContent("this image is too large; upload a smaller photo")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            expected = "JPEG" if media_type == JPEG else "PNG"
            if image.format != expected:
                raise UnsupportedMedia("the file's content does not match an image we accept")
            image = ImageOps.exif_transpose(image)  # keep it upright once the orientation tag is gone
            out = io.BytesIO()
            if media_type == JPEG:
                image.convert("RGB" if image.mode not in ("RGB", "L") else image.mode).save(out, "JPEG", quality=92)
            else:
                image.save(out, "PNG")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia("this image cannot be read; upload another copy") from exc
    return out.getvalue()
