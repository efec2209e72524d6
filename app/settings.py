"""HEIRLINE_* settings, read once from the environment.

The embedded mode works with no configuration at all: the database is SQLite under ``var/`` and the
secret key and key-encryption key are generated once into ``var/`` (with a warning). Production
(``HEIRLINE_ENV=production``) refuses to start without explicit keys.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("heirline.settings")

ENVIRONMENTS = ("development", "demo", "test", "production")


class SettingsError(RuntimeError):
    """The configuration cannot be used; the message says what to set."""


@dataclass(frozen=True)
class KeyRing:
    """Key-encryption keys by id; ``active`` wraps new data keys, the others only unwrap."""

    active: str
    keys: dict[str, bytes]

    @classmethod
    def parse(cls, text: str) -> "KeyRing":
        keys: dict[str, bytes] = {}
        active = ""
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            kid, sep, b64 = item.partition(":")
            if not sep or not kid:
                raise SettingsError("HEIRLINE_KEK must be 'kid:base64key[,kid:base64key...]'")
            try:
                key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            except ValueError as exc:
                raise SettingsError(f"HEIRLINE_KEK key {kid!r} is not base64") from exc
            if len(key) != 32:
                raise SettingsError(f"HEIRLINE_KEK key {kid!r} must be 32 bytes (256 bits)")
            keys[kid] = key
            active = active or kid
        if not keys:
            raise SettingsError("HEIRLINE_KEK holds no key")
        return cls(active=active, keys=keys)

    def serialize(self) -> str:
        order = [self.active] + [k for k in self.keys if k != self.active]
        return ",".join(f"{k}:{base64.urlsafe_b64encode(self.keys[k]).decode()}" for k in order)

    @staticmethod
    def new_key_text(kid: str) -> str:
        return f"{kid}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"HEIRLINE_{name}", default).strip()


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if not raw:
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"HEIRLINE_{name} must be an integer, not {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    db_pool_size: int
    var_dir: Path
    secret_key: bytes
    keyring: KeyRing
    default_region: str
    issuer: str
    outbound_allowlist: tuple[str, ...]
    embedded_worker: bool
    cookie_secure: bool
    smtp_url: str
    mail_from: str
    sms_gateway_url: str
    sms_gateway_token: str
    otp_ttl_seconds: int
    session_ttl_hours: int
    max_body_bytes: int
    log_level: str
    recycling_daily_quota: int = 10000
    delivery_lease_seconds: int = 60
    generated: tuple[str, ...] = field(default=())

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")


def _load_or_generate(path: Path, make: "callable[[], str]", what: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log.warning("generated a new %s in %s: keep this file, or set it explicitly", what, path)
    return value


def load_settings() -> Settings:
    env = _env("ENV", "development").lower()
    if env not in ENVIRONMENTS:
        raise SettingsError(f"HEIRLINE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    production = env == "production"
    var_dir = Path(_env("VAR_DIR", "var"))
    database_url = _env("DATABASE_URL", "sqlite:///" + str(var_dir / "heirline.db"))
    if not database_url.startswith(("sqlite:", "postgresql:", "postgres:", "cockroachdb:")):
        raise SettingsError("HEIRLINE_DATABASE_URL must start with sqlite:///, postgresql:// or cockroachdb://")

    generated: list[str] = []
    secret_text = _env("SECRET_KEY")
    kek_text = _env("KEK")
    if production and (not secret_text or not kek_text):
        raise SettingsError(
            "production refuses to start without explicit keys: set HEIRLINE_SECRET_KEY "
            "(at least 32 random characters) and HEIRLINE_KEK ('kid:base64 32-byte key'); "
            "`python -c \"import secrets;print(secrets.token_urlsafe(48))\"` makes one"
        )
    if not secret_text:
        secret_text = _load_or_generate(
            var_dir / "secret_key", lambda: secrets.token_urlsafe(48), "secret key"
        )
        generated.append("secret_key")
    if len(secret_text) < 32:
        raise SettingsError("HEIRLINE_SECRET_KEY must be at least 32 characters")
    if not kek_text:
        kek_text = _load_or_generate(
            var_dir / "kek", lambda: KeyRing.new_key_text("k1"), "key-encryption key"
        )
        generated.append("kek")

    return Settings(
        env=env,
        database_url=database_url,
        db_pool_size=_int("DB_POOL_SIZE", 10),
        var_dir=var_dir,
        secret_key=secret_text.encode(),
        keyring=KeyRing.parse(kek_text),
        default_region=_env("DEFAULT_REGION", "CN").upper(),
        issuer=_env("ISSUER", "http://127.0.0.1:8000").rstrip("/"),
        outbound_allowlist=tuple(h.strip() for h in _env("OUTBOUND_ALLOWLIST").split(",") if h.strip()),
        embedded_worker=_bool("EMBEDDED_WORKER", database_url.startswith("sqlite:") and env != "test"),
        cookie_secure=_bool("COOKIE_SECURE", production),
        smtp_url=_env("SMTP_URL"),
        mail_from=_env("MAIL_FROM", "Heirline <no-reply@heirline.invalid>"),
        sms_gateway_url=_env("SMS_GATEWAY_URL"),
        sms_gateway_token=_env("SMS_GATEWAY_TOKEN"),
        otp_ttl_seconds=_int("OTP_TTL_SECONDS", 600),
        session_ttl_hours=_int("SESSION_TTL_HOURS", 12),
        max_body_bytes=_int("MAX_BODY_BYTES", 64 * 1024),
        log_level=_env("LOG_LEVEL", "INFO").upper(),
        recycling_daily_quota=_int("RECYCLING_DAILY_QUOTA", 10000),
        delivery_lease_seconds=_int("DELIVERY_LEASE_SECONDS", 60),
        generated=tuple(generated),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
