"""Constraints the auto-migration cannot express: composite indexes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T05:35:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite indexes: one tenure per (number, seq); rate-limit buckets by time"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)

    async def run():
        await RawTable.raw("CREATE UNIQUE INDEX tenure_number_seq ON tenure (number, seq)")
        await RawTable.raw("CREATE INDEX rate_event_bucket_at ON rate_event (bucket, at)")

    async def run_backwards():
        await RawTable.raw("DROP INDEX tenure_number_seq")
        await RawTable.raw("DROP INDEX rate_event_bucket_at")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
