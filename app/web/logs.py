"""Logs never carry secrets: links that are credentials (invitations, veto links) are masked in access logs,
and database drivers, which log statements with their parameters, stay at WARNING even in DEBUG."""

from __future__ import annotations

import logging
import re

SECRET_PATHS = re.compile(r"(/(?:v1/)?invitations/|/veto/)[^/?\s\"]+")


def redact(text: str) -> str:
    return SECRET_PATHS.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


# database drivers log every statement with its parameters at DEBUG (message bodies, code hashes)
QUIET = ("aiosqlite", "asyncpg", "piccolo")


def install() -> None:
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn.access", "uvicorn.error", "heirline"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
