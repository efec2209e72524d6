from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import ForeignKey

ID = "2026-11-23T12:05:27:778481"
VERSION = "1.38.0"
DESCRIPTION = "drop the indexes on tenure.number and number_event.carrier: the unique (number, seq) and (carrier, webhook_id) indexes serve the same lookups"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="heirline", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Tenure",
        tablename="tenure",
        column_name="number",
        db_column_name="number",
        params={"index": False},
        old_params={"index": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="NumberEvent",
        tablename="number_event",
        column_name="carrier",
        db_column_name="carrier",
        params={"index": False},
        old_params={"index": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    return manager
