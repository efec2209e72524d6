"""Constraints the auto-migration cannot express for the number life cycle."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T05:54:14:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook-id unique per carrier; at most one open release case per tenure"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)

    async def run():
        await RawTable.raw("CREATE UNIQUE INDEX number_event_carrier_webhook_id ON number_event (carrier, webhook_id)")
        await RawTable.raw("CREATE UNIQUE INDEX release_case_one_open ON release_case (tenure) WHERE status = 'open'")

    async def run_backwards():
        await RawTable.raw("DROP INDEX number_event_carrier_webhook_id")
        await RawTable.raw("DROP INDEX release_case_one_open")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
