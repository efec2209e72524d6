"""Domain errors. They know nothing of HTTP; ``app.web.errors`` maps each to an answer.

``err`` is the RFC 8935 vocabulary used in our problem+json bodies.
"""

from __future__ import annotations


class HeirlineError(Exception):
    status = 400
    err = "invalid_request"
    title = "Invalid request"

    def __init__(self, detail: str = "", *, field: str | None = None, retry_after: int | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.field = field
        self.retry_after = retry_after


class InvalidRequest(HeirlineError):
    pass


class InvalidNumber(InvalidRequest):
    title = "Invalid phone number"


class WeakPassword(InvalidRequest):
    title = "Password too weak"


class InvalidCode(HeirlineError):
    """Wrong, expired or already used one-time code."""

    status = 400
    err = "invalid_request"
    title = "Invalid or expired code"


class AuthenticationFailed(HeirlineError):
    status = 401
    err = "authentication_failed"
    title = "Authentication failed"


class AccessDenied(HeirlineError):
    status = 403
    err = "access_denied"
    title = "Access denied"


class NotFound(HeirlineError):
    status = 404
    err = "not_found"
    title = "Not found"


class Conflict(HeirlineError):
    status = 409
    err = "conflict"
    title = "Conflict"


class InvalidState(HeirlineError):
    status = 409
    err = "invalid_state"
    title = "Invalid state"


class RateLimited(HeirlineError):
    status = 429
    err = "rate_limited"
    title = "Too many requests"


class Unavailable(HeirlineError):
    """A dependency (SMS gateway, SMTP, database) is down; the client may retry later."""

    status = 503
    err = "temporarily_unavailable"
    title = "Service unavailable"


class Contention(Unavailable):
    """A serialization failure: another transaction changed the same records; retrying succeeds."""

    err = "temporarily_unavailable"
    title = "Busy, retry"


class PayloadTooLarge(HeirlineError):
    status = 413
    err = "invalid_request"
    title = "Payload too large"


class UnsupportedMedia(HeirlineError):
    """An upload whose bytes are not a type we accept, whatever its name or declared type says."""

    status = 415
    err = "invalid_request"
    title = "Unsupported media type"


class UnsafeContent(HeirlineError):
    """An upload of an accepted type that carries active content (scripts, launch actions, attachments)."""

    status = 422
    err = "invalid_request"
    title = "Unsafe content"


class QuotaExceeded(RateLimited):
    """A client's daily quota of checks is spent."""

    camara_code = "QUOTA_EXCEEDED"


class StepUpRequired(AccessDenied):
    """A sensitive change needs a fresh proof: the password and a `step_up` code."""

    err = "step_up_required"
