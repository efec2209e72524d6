"""Messages for a configured transport (SMTP, the SMS gateway) are kept in the outbox with their
change and sent from there, retried until they go out."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-24T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox_message: status (kept, pending, sending, sent, failed), attempts, next_attempt_at, last_error"


def _params(**params) -> dict:
    return {"null": False, "primary_key": False, "unique": False, "index": False,
            "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False, **params}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="heirline", description=DESCRIPTION)
    for name, column_class, params in (
        ("status", Varchar, _params(length=8, default="kept")),
        ("attempts", Integer, _params(default=0)),
        ("next_attempt_at", Timestamptz, _params(default=None, null=True)),
        ("last_error", Varchar, _params(length=200, default="")),
    ):
        manager.add_column(
            table_class_name="OutboxMessage",
            tablename="outbox_message",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
