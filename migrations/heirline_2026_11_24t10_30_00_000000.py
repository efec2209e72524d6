"""A poll stream remembers when its platform last polled, for the operator's metrics."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-24T10:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ssf_stream.last_polled_at: a platform that stops polling shows in /metrics"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Stream",
        tablename="ssf_stream",
        column_name="last_polled_at",
        db_column_name="last_polled_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={"default": None, "null": True, "primary_key": False, "unique": False, "index": False,
                "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False},
        schema=None,
    )
    return manager
