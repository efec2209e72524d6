"""Outbound safety: Heirline only calls public addresses, unless the operator allow-lists a host.

The check runs when a platform configures a URL and again at every delivery, inside the HTTP
client's resolver, so the address connected to is the address checked (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from app.domain.notices import address_allowed, check_endpoint_url
from app.errors import InvalidRequest
from app.settings import get_settings


class AddressRefused(OSError):
    """The destination resolves only to addresses we must not call."""


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


async def check_url(url: str) -> str:
    """Refuse, at configuration time, a URL whose host is private, loopback, link-local or metadata."""
    check_endpoint_url(url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await _resolve(parts.hostname, port)
    except OSError:
        raise InvalidRequest(f"the host {parts.hostname!r} does not resolve", field="endpoint_url") from None
    allowlist = get_settings().outbound_allowlist
    if not addresses or not all(address_allowed(a, parts.hostname, allowlist) for a in addresses):
        raise InvalidRequest("endpoint_url must reach a public address (private, loopback, link-local and "
                             "metadata addresses are refused unless HEIRLINE_OUTBOUND_ALLOWLIST names them)",
                             field="endpoint_url")
    return url


def refuse_literal(url: str) -> None:
    """aiohttp does not resolve IP literals, so the resolver never sees them: check them here."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the GuardedResolver checks what it resolves to
    if not address_allowed(host, host, get_settings().outbound_allowlist):
        raise AddressRefused(f"refused to connect to {host}: not a public address")


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that drops every address the outbound rules refuse."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowlist = get_settings().outbound_allowlist
        allowed = [r for r in results if address_allowed(r["host"], host, allowlist)]
        if not allowed:
            raise AddressRefused(f"refused to connect to {host}: not a public address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
