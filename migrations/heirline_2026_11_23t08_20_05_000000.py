"""Indexes for legacy cases that the auto-migration cannot express."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T08:20:05:000000"
VERSION = "1.38.0"
DESCRIPTION = "an invitation link opens one heir; one live legacy case per owner; due timers by time"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)

    async def run():
        await RawTable.raw("CREATE UNIQUE INDEX heir_invite_hash ON heir (invite_hash)")
        await RawTable.raw(
            "CREATE UNIQUE INDEX legacy_case_live ON legacy_case (owner) "
            "WHERE status IN ('challenge', 'evidence_review', 'executing')"
        )
        await RawTable.raw("CREATE INDEX legacy_case_status ON legacy_case (status, veto_ends_at)")

    async def run_backwards():
        for name in ("heir_invite_hash", "legacy_case_live", "legacy_case_status"):
            await RawTable.raw(f"DROP INDEX {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
