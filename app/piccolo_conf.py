"""Piccolo's configuration, found through PICCOLO_CONF=app.piccolo_conf (set by the CLI)."""

from piccolo.conf.apps import AppRegistry

from app.storage.engine import DB

APP_REGISTRY = AppRegistry(apps=["app.storage.piccolo_app"])

__all__ = ["DB", "APP_REGISTRY"]
