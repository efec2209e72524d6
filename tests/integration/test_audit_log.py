"""The hash-chained audit log and `heirline audit verify`."""

from __future__ import annotations

import subprocess
import sys

from app import audit
from app.storage.engine import write_transaction
from app.storage.tables import AuditEvent


async def write_entries(n: int) -> None:
    for i in range(n):
        async with write_transaction():
            await audit.record("test:event", actor="tester", subject=f"thing:{i}", detail={"i": i, "text": "改"})


def heirline(cli_env, *args):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=cli_env, capture_output=True,
                          text=True, timeout=120)


async def test_chain_verifies(db):
    await write_entries(5)
    result = await audit.verify()
    assert result.ok and result.entries == 5
    rows = await AuditEvent.select().order_by(AuditEvent.seq)
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, 5))


async def test_edited_row_is_detected(db):
    await write_entries(5)
    await AuditEvent.update({AuditEvent.detail: '{"i":2,"text":"forged"}'}).where(AuditEvent.seq == 3)
    result = await audit.verify()
    assert not result.ok and result.first_bad_seq == 3


async def test_deleted_row_is_detected(db):
    await write_entries(4)
    await AuditEvent.delete().where(AuditEvent.seq == 2)
    result = await audit.verify()
    assert not result.ok and result.first_bad_seq == 2


async def test_rewritten_tail_with_recomputed_hash_breaks_the_next_link(db):
    await write_entries(3)
    await AuditEvent.update({AuditEvent.actor: "someone else", AuditEvent.hash: "f" * 64}).where(AuditEvent.seq == 2)
    result = await audit.verify()
    assert not result.ok and result.first_bad_seq == 2


async def test_a_rolled_back_change_leaves_no_audit_entry(db):
    try:
        async with write_transaction():
            await audit.record("test:event", actor="tester")
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    assert await AuditEvent.count() == 0


async def test_cli_verify_passes_then_detects_tampering(db, cli_env):
    await write_entries(3)
    ok = heirline(cli_env, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "3 entries" in ok.stdout
    await AuditEvent.update({AuditEvent.action: "owner:nothing"}).where(AuditEvent.seq == 2)
    broken = heirline(cli_env, "audit", "verify")
    assert broken.returncode == 1
    assert "entry 2" in broken.stderr
