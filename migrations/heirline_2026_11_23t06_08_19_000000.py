"""Constraints and indexes for platform notices that the auto-migration cannot express."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T06:08:19:000000"
VERSION = "1.38.0"
DESCRIPTION = "one outcome per case and platform; a subject once per stream; due notices by time"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)

    async def run():
        await RawTable.raw("CREATE UNIQUE INDEX case_outcome_case_platform ON case_outcome (\"case\", platform)")
        await RawTable.raw("CREATE UNIQUE INDEX ssf_subject_stream_e164 ON ssf_subject (stream, e164)")
        await RawTable.raw("CREATE INDEX notice_due ON notice (status, next_attempt_at)")

    async def run_backwards():
        for name in ("case_outcome_case_platform", "ssf_subject_stream_e164", "notice_due"):
            await RawTable.raw(f"DROP INDEX {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
