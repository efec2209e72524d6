"""Platform notices as Security Event Tokens: event types, claims, retry timing, outbound addresses.

Pure rules; signing and delivery live in app.crypto.sets and app.delivery.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random

from app.errors import InvalidRequest

RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
IDENTIFIER_RECYCLED = RISC + "identifier-recycled"
VERIFICATION = SSF + "verification"

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
WEBHOOKS = "urn:standard-webhooks:1.0"  # for platforms without SSF
METHODS = (PUSH, POLL, WEBHOOKS)

# when a notice is next attempted, if its platform polls for it: never by us. Past every real moment, it
# keeps such notices out of the range the delivery worker's claim walks, however many wait for a poll
AWAITING_POLL = dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)


def first_attempt(method: str, moment: dt.datetime) -> dt.datetime:
    """When a new notice is first attempted: at once when we deliver it, never when its platform polls."""
    return AWAITING_POLL if method == POLL else moment


def own_event(issuer: str, name: str) -> str:
    return f"{issuer}/secevent/event-type/{name}"


def events_supported(issuer: str) -> list[str]:
    return [own_event(issuer, "identifier-deactivated"), own_event(issuer, "account-handover-requested"),
            own_event(issuer, "identifier-deactivation-cancelled"), IDENTIFIER_RECYCLED, VERIFICATION]


def webhook_type(issuer: str, event: str) -> str:
    """The Standard Webhooks `type` of an event, for platforms without SSF."""
    return {
        own_event(issuer, "identifier-deactivated"): "phone_number.deactivated",
        own_event(issuer, "account-handover-requested"): "account.handover_requested",
        own_event(issuer, "identifier-deactivation-cancelled"): "phone_number.deactivation_cancelled",
        IDENTIFIER_RECYCLED: "phone_number.recycled",
        VERIFICATION: "stream.verification",
    }[event]


def numeric(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def phone_subject(e164: str) -> dict:
    return {"format": "phone_number", "phone_number": e164}


def claims(*, issuer: str, jti: str, aud: str, iat: dt.datetime, sub_id: dict, event: str, payload: dict,
           txn: str | None = None) -> dict:
    """SSF 1.0 SET claims: exactly one event, `sub_id` and never `sub`, no `exp`."""
    body = {"iss": issuer, "jti": jti, "iat": numeric(iat), "aud": aud, "sub_id": sub_id,
            "events": {event: payload}}
    if txn:
        body["txn"] = txn
    return body


# ---------------------------------------------------------------- retries

# Standard Webhooks / Svix schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then every 10 h
SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000]


def next_attempt(attempts: int, now: dt.datetime, deadline: dt.datetime, rng: random.Random | None = None
                 ) -> dt.datetime | None:
    """When to try again after ``attempts`` failed tries, with ±20 % jitter; None once past the deadline."""
    base = SCHEDULE[attempts] if attempts < len(SCHEDULE) else SCHEDULE[-1]
    jitter = (rng or random).uniform(0.8, 1.2)
    when = now + dt.timedelta(seconds=base * jitter)
    return when if when <= deadline else None


# ---------------------------------------------------------------- outbound safety

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def address_allowed(ip: str, host: str, allowlist: tuple[str, ...]) -> bool:
    """Only public unicast addresses, unless the operator allow-listed the host or a range holding it."""
    address = ipaddress.ip_address(ip)
    for entry in allowlist:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    if address in METADATA:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def check_endpoint_url(url: str) -> str:
    """A push or webhook URL: http(s), a host, no credentials, at most 500 characters."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or len(url) > 500:
        raise InvalidRequest("endpoint_url must be a URL of at most 500 characters", field="endpoint_url")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest("endpoint_url must be an http(s) URL with a host", field="endpoint_url")
    if parts.username or parts.password:
        raise InvalidRequest("endpoint_url must not carry credentials; use authorization_header",
                             field="endpoint_url")
    return url
