"""Key rotation re-wraps every sealed secret; deleting an owner shreds their data key; owners export their data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.audit import verify
from app.crypto import sets
from app.crypto.envelope import DecryptionError, WrappedKey, unwrap_data_key
from app.services import keys, streams
from app.settings import KeyRing, get_settings
from app.storage.tables import Binding, Heir, Owner
from tests.support import (
    PNG, confirmed_heir, last_code, make_carrier, platform_id, reviewer, send_event, upload,
)


@pytest.fixture
def keyring():
    """Swap the process's key ring for a test, and put the original back."""
    settings = get_settings()
    original = settings.keyring

    def use(ring: KeyRing) -> None:
        object.__setattr__(settings, "keyring", ring)
        sets.forget_active()
        from app.services import carriers

        carriers._verifiers.clear()

    yield use
    use(original)


async def add_binding(client, owner, hint="wxid_secret_hint"):
    body = {"platform_id": await platform_id(client, "wechat"), "binding_types": ["login"], "disposition": "unbind",
            "account_hint": hint, "instructions": "private words"}
    assert (await client.post("/v1/me/bindings", json=body, headers=owner.headers)).status_code == 201


async def test_export_holds_everything_decrypted(client, owner, other_owner):
    await add_binding(client, owner)
    await confirmed_heir(client, owner, "heir@example.com")
    response = await client.get("/v1/me/export", headers=owner.headers)
    assert response.status_code == 200
    data = response.json()
    assert data["format"] == "heirline-owner-export/1" and data["owner"]["phone_number"] == owner.phone
    assert [b["account_hint"] for b in data["bindings"]] == ["wxid_secret_hint"]
    assert [h["email"] for h in data["heirs"]] == ["heir@example.com"]
    assert any(e["action"] == "binding:create" for e in data["audit"])
    other = (await client.get("/v1/me/export", headers=other_owner.headers)).json()
    assert other["bindings"] == [] and "wxid_secret_hint" not in json.dumps(other)
    trail = (await client.get("/v1/me/audit", headers=owner.headers)).json()
    assert trail[0]["action"] == "owner:export"


async def test_deletion_needs_the_password_and_shreds_the_data_key(client, owner, keyring):
    await add_binding(client, owner)
    await confirmed_heir(client, owner, "heir@example.com")
    backup = await Owner.select(Owner.id, Owner.data_key, Owner.kek_id).where(Owner.id == owner.id).first()
    backup_hint = await Binding.select(Binding.id, Binding.account_hint_ct).first()

    wrong = await client.post("/v1/me/deletion", json={"password": "not my password"}, headers=owner.headers)
    assert wrong.status_code == 401 and await Binding.count() == 1
    assert (await client.post("/v1/me/deletion", json={"password": owner.password}, headers=owner.headers)).status_code == 204
    assert await Binding.count() == 0 and await Heir.count() == 0
    row = await Owner.select(Owner.data_key, Owner.status).where(Owner.id == owner.id).first()
    assert row == {"data_key": None, "status": "deleted"}
    assert (await client.get("/v1/me/bindings", headers=owner.headers)).status_code == 401  # sessions ended
    await client.post("/v1/otp", json={"phone_number": owner.phone, "purpose": "login"})
    login = await client.post("/v1/sessions", json={"phone_number": owner.phone, "password": owner.password,
                                                   "code": await last_code(owner.phone)})
    assert login.status_code == 401
    assert (await verify()).ok

    # the backup taken before deletion still opens with today's KEK: deletion alone cannot reach it ...
    old_ring = get_settings().keyring
    wrapped = WrappedKey(backup["kek_id"], bytes(backup["data_key"]))
    assert unwrap_data_key(old_ring, str(owner.id), wrapped)
    # ... but once the KEK is rotated and the old one retired, it never opens again
    new_text = KeyRing.new_key_text("k9")
    both = KeyRing.parse(new_text + "," + (get_settings().var_dir / "kek").read_text().strip())
    await keys.rewrap(both)
    keyring(KeyRing.parse(new_text))
    with pytest.raises(DecryptionError):
        unwrap_data_key(get_settings().keyring, str(owner.id), wrapped)
    assert backup_hint["account_hint_ct"] is not None


async def test_rotation_rewraps_every_kind_of_secret_and_the_old_key_can_go(client, owner, keyring, cli_env):
    await add_binding(client, owner)
    heir = await confirmed_heir(client, owner, "heir@example.com")
    claim = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=heir.headers)).json()
    await upload(client, heir, claim["id"], PNG)
    await streams.add_platform("Weibo", webhook_url="http://127.0.0.1:9/hook")
    carrier = await make_carrier()
    await sets.sign({"iss": "x"}, "RS256")
    before = await keys.kids_in_use()
    old_kid = get_settings().keyring.active
    assert set(before) == {old_kid} and sum(before.values()) >= 5

    old_text = (get_settings().var_dir / "kek").read_text().strip()
    new_text = KeyRing.new_key_text("k2")
    env = {**cli_env, "HEIRLINE_KEK": f"{new_text},{old_text}"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "keys", "rotate"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "remove it from HEIRLINE_KEK" in done.stdout and old_kid in done.stdout
    assert set(await keys.kids_in_use()) == {"k2"}

    keyring(KeyRing.parse(new_text))  # the old key is gone: everything still opens
    bindings = (await client.get("/v1/me/bindings", headers=owner.headers)).json()
    assert bindings[0]["account_hint"] == "wxid_secret_hint"
    assert (await send_event(client, carrier, "number.suspended", owner.phone)).status_code == 202
    staff = await reviewer(client)
    evidence_id = (await client.get(f"/v1/review/claims/{claim['id']}", headers=staff.headers)).json()["evidence"][0]["id"]
    assert (await client.get(f"/v1/review/claims/{claim['id']}/evidence/{evidence_id}",
                             headers=staff.headers)).content.startswith(b"\x89PNG")
    token, kid = await sets.sign({"iss": "x"}, "RS256")
    assert token.count(".") == 2
    assert (await verify()).ok
