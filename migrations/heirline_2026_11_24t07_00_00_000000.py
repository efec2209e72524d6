"""Imported rows' keys lead with their number; the unused index on number_event.e164 goes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.table import Table

ID = "2026-11-24T07:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = (
    "bulk-import keys become import:<number>:<row digest> (a file sorted by number then writes the key index"
    " in order instead of at random); drop the index on number_event.e164, which no query reads"
)


class RawTable(Table):
    pass


# import:<40 hex digits> -> import:<e164>:<the same digits>: a file imported before still re-imports
# as duplicates
REKEY = (
    "UPDATE number_event SET webhook_id = 'import:' || e164 || ':' || substr(webhook_id, 8) "
    "WHERE webhook_id LIKE 'import:%' AND length(webhook_id) = 47 AND type = 'number.disconnected'"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)

    manager.alter_column(
        table_class_name="NumberEvent",
        tablename="number_event",
        column_name="e164",
        db_column_name="e164",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    async def run():
        await RawTable.raw(REKEY)

    async def run_backwards():
        await RawTable.raw(
            "UPDATE number_event SET webhook_id = 'import:' || substr(webhook_id, length(webhook_id) - 39) "
            "WHERE webhook_id LIKE 'import:+%' AND type = 'number.disconnected'"
        )

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
