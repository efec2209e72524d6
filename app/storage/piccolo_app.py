from piccolo.conf.apps import AppConfig

from app.paths import MIGRATIONS
from app.storage.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="heirline",
    migrations_folder_path=str(MIGRATIONS),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
    commands=[],
)
