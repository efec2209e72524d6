"""The `heirline` command."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pathlib
import sys

os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")

import click  # noqa: E402

from app.settings import SettingsError, get_settings  # noqa: E402


def _run(coro):
    return asyncio.run(coro)


def _settings():
    try:
        return get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


async def _migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from app.services import catalog
    from app.storage.engine import prepare_database

    settings = _settings()
    if settings.is_sqlite:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    result = await run_forwards(app_name="heirline", migration_id="all", fake=False)
    if not result.success:
        raise click.ClickException(f"migrations failed: {result.message}")
    await prepare_database(pool=False)
    await catalog.seed()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Heirline: the digital-legacy and account-inheritance registry."""


@main.command()
def migrate() -> None:
    """Apply migrations (SQLite or PostgreSQL from HEIRLINE_DATABASE_URL) and seed the platform catalog."""
    _run(_migrate())
    click.echo("database is up to date")


def _serve(host: str, port: int, workers: int) -> None:
    from app.web import serving

    serving.serve(host, port, workers, _settings().log_level.lower())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web pages and the APIs (migrates the embedded SQLite database first)."""
    if _settings().is_sqlite:
        _run(_migrate())
    _serve(host, port, workers)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Load the demo data and stop.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Migrate, load believable demo data, print how to log in, and serve."""
    from app.services import demo as demo_data

    os.environ.setdefault("HEIRLINE_ENV", "demo")
    get_settings.cache_clear()
    _run(_migrate())
    people = _run(demo_data.load())
    clients = _run(demo_data.load_clients())
    base = f"http://{host}:{port}"
    click.echo("")
    click.echo(f"Heirline demo is ready on {base}")
    click.echo("")
    owners = [p for p in people if p.login.startswith("+")]
    for person in owners:
        click.echo(f"  {person.label}: phone {person.login}  password {person.password}")
    click.echo("")
    click.echo("Log in with a number and its password; the second-factor code is texted to the number,")
    click.echo(f"which in the demo lands in the outbox: open {base}/demo/outbox")
    click.echo(f"or run `heirline outbox --to {owners[0].login}`.  API docs: {base}/schema")
    click.echo("")
    reviewer = clients.get("reviewer", {})
    click.echo(f"Heirs and reviewers log in at {base}/accounts/login (the code goes to the e-mail, also in the outbox):")
    for person in people:
        if person not in owners:
            click.echo(f"  {person.label}: e-mail {person.login}  password {person.password}")
    if reviewer.get("password"):
        click.echo(f"  Reviewer: e-mail {reviewer['email']}  password {reviewer['password']}")
    click.echo("")
    click.echo(f"Demo carrier {clients['carrier']['id']} and platforms WeChat, Alipay (poll streams):")
    click.echo(f"their tokens and secrets are in {_settings().var_dir / 'demo-credentials.json'}")
    click.echo("")
    if not no_serve:
        _serve(host, port, 1)


@main.command()
@click.option("--to", "to", default=None, help="Only messages to this address or number.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--limit", default=50, show_default=True)
def outbox(to: str | None, as_json: bool, limit: int) -> None:
    """Messages the built-in notifier kept (one-time codes, alerts), where no transport is configured."""
    from app.domain.numbers import normalize
    from app.errors import InvalidNumber
    from app.notify.outbox import sent

    if to and "@" not in to:
        try:
            to = normalize(to, _settings().default_region).e164
        except InvalidNumber as exc:
            raise click.BadParameter(exc.detail, param_hint="--to") from exc
    messages = _run(sent(to, limit))
    if as_json:
        click.echo(json.dumps([{**m, "created_at": m["created_at"].isoformat()} for m in messages],
                              ensure_ascii=False, indent=2))
        return
    if not messages:
        click.echo("the outbox is empty")
    for m in messages:
        click.echo(f"{m['created_at']:%Y-%m-%d %H:%M:%S}  {m['channel']:5}  {m['to']}  {m['subject']}")
        click.echo(f"    {m['body']}")


def _fail(exc: Exception) -> None:
    from app.errors import HeirlineError

    if isinstance(exc, HeirlineError):
        raise click.ClickException(exc.detail) from exc
    raise exc


@main.group()
def carriers() -> None:
    """Carriers: the clients that report number events."""


@carriers.command("add")
@click.argument("name")
@click.option("--jurisdiction", required=True, type=click.Choice(["CN", "US"], case_sensitive=False))
@click.option("--data-since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First day its reports cover (recycling checks answer no_data before it); default today.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id","webhook_secret","api_token"}.')
def carriers_add(name: str, jurisdiction: str, data_since, as_json: bool) -> None:
    """Register a carrier; prints its webhook secret and API token once (they are not shown again)."""
    from app.services import carriers as service

    try:
        creds = _run(service.add(name, jurisdiction, data_since.date() if data_since else None))
    except Exception as exc:  # noqa: BLE001 - domain errors become a clean message
        _fail(exc)
    data = {"id": str(creds.id), "webhook_secret": creds.webhook_secret, "api_token": creds.api_token}
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")
        click.echo("keep the secret and the token now: only their hashes or sealed copies are stored")


@carriers.command("rotate-secret")
@click.argument("carrier_id")
@click.option("--grace-hours", default=72, show_default=True, help="How long the old secret stays valid.")
@click.option("--json", "as_json", is_flag=True)
def carriers_rotate(carrier_id: str, grace_hours: int, as_json: bool) -> None:
    """Issue a new webhook secret; the old one keeps verifying for the grace period."""
    import datetime as dt
    import uuid as uuid_

    from app.services import carriers as service

    try:
        secret = _run(service.rotate_secret(uuid_.UUID(carrier_id), dt.timedelta(hours=grace_hours)))
    except ValueError as exc:
        raise click.BadParameter("not a carrier id", param_hint="CARRIER_ID") from exc
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo(json.dumps({"id": carrier_id, "webhook_secret": secret}) if as_json else f"webhook_secret: {secret}")


@main.command("import-disconnects")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--carrier", "carrier_id", required=True, help="The carrier id the file comes from.")
def import_disconnects(file: str, carrier_id: str) -> None:
    """Bulk-import a carrier's disconnections (CSV); re-importing the same file changes nothing."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from app.services import carriers as service
    from app.services import imports
    from app.storage.engine import close_database, prepare_database

    path = pathlib.Path(file)
    gc.collect()
    gc.freeze()  # this process only imports: what start-up built stays out of the collector's sight

    async def run():
        await prepare_database(pool=_settings().db_pool_size > 0)  # PostgreSQL: reads and batches share a pool
        try:
            return await read(await service.get(carrier_id))
        finally:
            await close_database()

    async def read(carrier):
        with path.open("r", encoding="utf-8-sig", newline="") as fh, Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.completed:,.0f} rows"), TimeRemainingColumn(), transient=False) as progress:
            task = progress.add_task("reading", total=None)

            def advance(rows: int, total: int | None) -> None:  # reading (no total yet), then importing
                progress.update(task, completed=rows, total=total, description="reading" if total is None else "importing")

            with imports.without_collector():  # this process only imports
                return await imports.import_disconnections(carrier, fh, advance)

    try:
        summary = _run(run())
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo(f"rows: {summary.rows}  applied: {summary.applied}  duplicates: {summary.duplicates}  "
               f"rejected: {summary.rejected_count}")
    for line, detail in summary.rejected[:50]:
        click.echo(f"  line {line}: {detail}", err=True)
    if summary.rejected_count > 50:
        click.echo(f"  ... and {summary.rejected_count - 50} more", err=True)
    if summary.rejected_count:
        sys.exit(1)


@main.group()
def accounts() -> None:
    """Owners and accounts, as the operator sees them."""


@accounts.command("disable")
@click.argument("identifier")
def accounts_disable(identifier: str) -> None:
    """Disable an owner (NUMBER) or an heir's or reviewer's account (EMAIL); all its sessions end at once."""
    from app.services import accounts as service

    try:
        click.echo("disabled " + _run(service.disable(identifier)))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)


@main.group()
def callers() -> None:
    """Callers: debt collectors and marketers who check whether a number changed hands."""


@callers.command("add")
@click.argument("name")
@click.option("--daily-quota", default=10000, show_default=True, help="Numbers it may check per day.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id","api_token"}.')
def callers_add(name: str, daily_quota: int, as_json: bool) -> None:
    """Register a caller; prints its API token once (POST /v1/numbers/recycling:check, CAMARA check)."""
    from app.services import recycling

    try:
        caller_id, token = _run(recycling.add_caller(name, daily_quota))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    data = {"id": str(caller_id), "api_token": token}
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


@main.group()
def reviewers() -> None:
    """Reviewers: operator staff who verify evidence and decide legacy cases."""


@reviewers.command("add")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help='Print {"id","email","password"}.')
def reviewers_add(email: str, as_json: bool) -> None:
    """Create a reviewer account (or make an existing account a reviewer); prints a new password once.

    Reviewers log in at /accounts/login with the e-mail, the password and a code sent to the e-mail.
    """
    from app.services import accounts

    try:
        account_id, password = _run(accounts.add_reviewer(email))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    data = {"id": str(account_id), "email": email.strip().lower(), "password": password}
    if as_json:
        click.echo(json.dumps(data))
    else:
        click.echo(f"reviewer {data['email']} ({data['id']})")
        click.echo(f"password: {password}" if password else "an existing account: its password is unchanged")


@main.group()
def platforms() -> None:
    """Platforms: the apps that receive notices."""


@platforms.command("add")
@click.argument("name")
@click.option("--push-url", default=None, help="Push SETs here (RFC 8935).")
@click.option("--webhook-url", default=None, help="Send Standard Webhooks here instead of SETs.")
@click.option("--poll", is_flag=True, help="The platform polls for SETs (RFC 8936).")
@click.option("--all-subjects", is_flag=True, help='default_subjects "ALL": every disconnection, declared or not.')
@click.option("--json", "as_json", is_flag=True, help='Print {"id","api_token",...}.')
def platforms_add(name: str, push_url: str | None, webhook_url: str | None, poll: bool, all_subjects: bool,
                  as_json: bool) -> None:
    """Register a platform (an existing catalog entry of that name is reused); prints its token once."""
    from app.services import streams

    try:
        creds = _run(streams.add_platform(name, push_url=push_url, webhook_url=webhook_url, poll=poll,
                                          all_subjects=all_subjects))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    data = {"id": str(creds.id), "api_token": creds.api_token}
    if creds.stream_id:
        data["stream_id"] = creds.stream_id
    if creds.webhook_secret:
        data["webhook_secret"] = creds.webhook_secret
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--capacity", default=64, show_default=True, help="Deliveries in flight at once.")
def worker(once: bool, capacity: int) -> None:
    """Run deliveries, retries and timers (also runs inside `serve` on the embedded SQLite)."""
    import signal

    from app.delivery import worker as delivery
    from app.storage.engine import close_database, prepare_database

    async def main_loop():
        await prepare_database(pool=_settings().db_pool_size > 0)
        try:
            if once:
                await delivery.run_until_idle()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            click.echo("worker running; Ctrl-C to stop")
            await delivery.run(stop, capacity=capacity)
        finally:
            await close_database()

    _run(main_loop())


@main.command()
@click.option("--dead", is_flag=True, help="Only dead letters (undeliverable before the deadline).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
def deliveries(dead: bool, as_json: bool, limit: int) -> None:
    """Notices and their delivery state, newest first: what the operator watches."""
    from app.storage.tables import Notice

    async def fetch():
        query = Notice.select(Notice.id, Notice.stream.platform.name.as_alias("platform"), Notice.event,
                              Notice.status, Notice.attempts, Notice.last_error, Notice.created_at).order_by(
            Notice.created_at, ascending=False).limit(limit)
        if dead:
            query = query.where(Notice.status.is_in(["dead", "failed"]))
        return await query

    rows = _run(fetch())
    if as_json:
        click.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(f"{r['created_at']:%Y-%m-%d %H:%M}  {r['status']:9} tries={r['attempts']:<2} "
                   f"{r['platform'] or '-':20} {r['event'].rsplit('/', 1)[-1]:34} {r['last_error']}")
    if not rows:
        click.echo("no deliveries")


@main.group()
def keys() -> None:
    """Key management."""


@keys.command("rotate")
def keys_rotate() -> None:
    """New key-encryption key; re-wraps every data key and sealed secret, then retires the old key.

    With HEIRLINE_KEK set: put the new key first ('new:...,old:...'), run this, then remove the old
    key from HEIRLINE_KEK. With the generated var/kek: a new key is made and the old one is removed.
    """
    from app.services import keys as service
    from app.settings import KeyRing

    settings = _settings()
    path = settings.var_dir / "kek"
    generated = "kek" in settings.generated
    ring = settings.keyring
    if generated:
        number = max(int(k[1:]) for k in ring.keys if k[1:].isdigit()) + 1 if any(
            k[1:].isdigit() for k in ring.keys) else 1
        new_text = KeyRing.new_key_text(f"k{number}")
        old_text = path.read_text().strip()
        _write_secret(path, f"{new_text},{old_text}")
        ring = KeyRing.parse(f"{new_text},{old_text}")
    get_settings.cache_clear()  # everything else now reads the ring with the new key first
    moved = _run(service.rewrap(ring))
    left = {k: n for k, n in _run(service.kids_in_use()).items() if k != ring.active}
    if left:
        raise click.ClickException(f"secrets still wrapped by {sorted(left)}; run again")
    if generated:
        _write_secret(path, new_text)
        click.echo(f"re-wrapped {moved} secrets under {ring.active}; the old key was removed from {path}")
    else:
        old = [k for k in ring.keys if k != ring.active]
        click.echo(f"re-wrapped {moved} secrets under {ring.active}; nothing uses "
                   f"{', '.join(old) or 'any other key'} now: remove it from HEIRLINE_KEK")


def _write_secret(path: pathlib.Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


@keys.command("rotate-signing")
def keys_rotate_signing() -> None:
    """New SET signing keys; the old ones stay in the JWKS until the SETs they signed are delivered."""
    from app.crypto import sets

    click.echo("active signing keys: " + ", ".join(_run(sets.rotate())))


@main.group()
def numbers() -> None:
    """High-risk and legal holds on numbers."""


@numbers.command("hold")
@click.argument("number")
@click.option("--until", "until", required=True, help="RFC 3339 time or YYYY-MM-DD.")
@click.option("--reason", required=True)
@click.option("--by", "by", default="operator", show_default=True, help="Who sets the hold (a reviewer).")
def numbers_hold(number: str, until: str, reason: str, by: str) -> None:
    """Hold a number: clearance answers `blocked` until the given time."""
    from app.services import holds

    try:
        _run(holds.hold(number, until, reason, by))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo("held")


@numbers.command("release-hold")
@click.argument("number")
@click.option("--by", "by", default="operator", show_default=True)
def numbers_release(number: str, by: str) -> None:
    """Lift every hold on a number."""
    from app.services import holds

    try:
        count = _run(holds.lift(number, by))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo(f"lifted {count} hold(s)")


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the hash chain end to end; exit 1 at the first entry that does not hold."""
    from rich.progress import Progress

    from app import audit as audit_log
    from app.storage.tables import AuditEvent

    async def run():
        total = await AuditEvent.count()
        with Progress(transient=True) as progress:
            task = progress.add_task("verifying audit log", total=total or 1)
            return await audit_log.verify(lambda n: progress.update(task, completed=n))

    result = _run(run())
    if result.ok:
        click.echo(f"audit log intact: {result.entries} entries")
        return
    click.echo(f"audit log BROKEN at entry {result.first_bad_seq}: {result.reason} "
               f"({result.entries} entries checked before it)", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
