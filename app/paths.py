"""Where templates, migrations and locale catalogs live: the source tree, or inside the wheel."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def resource(name: str) -> Path:
    """``templates`` or ``migrations``: top level in a checkout, ``app/_bundled`` in a wheel."""
    here = ROOT / name
    return here if here.is_dir() else PACKAGE / "_bundled" / name


TEMPLATES = resource("templates")
MIGRATIONS = resource("migrations")
LOCALES = PACKAGE / "locale"
