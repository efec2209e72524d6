"""Has this number changed hands? Pure rules for the recycling checks, with no I/O.

Two shapes answer the same question from the tenures and disconnections carriers reported:

* CAMARA Number Recycling v0.2: ``phoneNumberRecycled`` is true when the holder changed after
  ``specifiedDate``, including when nobody held the number on that date (it was disconnected and has
  since been given to someone). Dates before the registry can evaluate are ``OUT_OF_RANGE``.
* The FCC Reassigned Numbers Database: ``yes`` when the number was permanently disconnected on or after
  ``since``, ``no`` when not, ``no_data`` when ``since`` is before the carrier's data begins.
  A suspension, a restored disconnection and a port-out are not permanent disconnections.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from app.errors import HeirlineError, InvalidRequest

MAX_QUERIES = 1000
CAMARA_PHONE = re.compile(r"^\+[1-9][0-9]{4,14}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    NO_DATA = "no_data"


class CamaraError(HeirlineError):
    """An error in CAMARA's own shape: ``{"status", "code", "message"}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.camara_code = code


def parse_date(value: object, field: str, today: dt.date, *, camara: bool = False) -> dt.date:
    """A full date (YYYY-MM-DD), not in the future."""
    if not isinstance(value, str) or not DATE.match(value):
        if camara:
            raise CamaraError(400, "INVALID_ARGUMENT", f"{field} must be a full date, YYYY-MM-DD")
        raise InvalidRequest(f"{field} must be a date, YYYY-MM-DD", field=field)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        if camara:
            raise CamaraError(400, "INVALID_ARGUMENT", f"{field} is not a valid date") from None
        raise InvalidRequest(f"{field} is not a valid date", field=field) from None
    if day > today:
        if camara:
            raise CamaraError(400, "OUT_OF_RANGE", f"{field} is in the future")
        raise InvalidRequest(f"{field} is in the future", field=field)
    return day


@dataclass(frozen=True)
class History:
    """What the registry knows of one number."""

    known_since: dt.date | None  # the carrier's data start (or first report); None: no carrier reports it
    holder_changes: tuple[dt.date, ...] = ()  # starts of tenures after the first (reassignments)
    disconnections: tuple[dt.date, ...] = ()  # permanent disconnections (not cancelled by a restore)


def reassigned_answer(history: History, since: dt.date, window_start: dt.date | None) -> Answer:
    """FCC RND semantics. A number no carrier reports answers like any number we hold no event for:
    the same answer whether or not someone registered it here (no leak through content)."""
    start = history.known_since or window_start
    if start is None or since < start:
        return Answer.NO_DATA
    return Answer.YES if any(d >= since for d in history.disconnections) else Answer.NO


def recycled_since(history: History, specified: dt.date) -> bool:
    """CAMARA semantics: the holder changed after ``specified`` (the date itself is not after)."""
    if history.known_since is None:
        raise CamaraError(404, "IDENTIFIER_NOT_FOUND", "the phone number is not served by a carrier of this registry")
    if specified < history.known_since:
        raise CamaraError(400, "OUT_OF_RANGE", "specifiedDate is before the carrier's data for this number begins")
    return any(change > specified for change in history.holder_changes)
