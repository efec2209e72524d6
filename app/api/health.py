import logging

from litestar import get
from litestar.exceptions import ServiceUnavailableException

from app.storage.tables import AuditEvent

log = logging.getLogger("heirline.health")


@get("/healthz", tags=["Operations"], summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["Operations"], summary="The database answers and is migrated")
async def readyz() -> dict[str, str]:
    try:
        await AuditEvent.count()
    except Exception as exc:  # any database failure means "not ready", never a 500
        log.warning("not ready: %s", exc)
        raise ServiceUnavailableException("database not reachable or not migrated") from exc
    return {"status": "ready"}
