"""The index the outbox's sender walks (after its columns exist: raw steps run before added columns)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-24T10:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox messages due by status and time"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)

    async def run():
        await RawTable.raw("CREATE INDEX outbox_message_due ON outbox_message (status, next_attempt_at)")

    async def run_backwards():
        await RawTable.raw("DROP INDEX outbox_message_due")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
