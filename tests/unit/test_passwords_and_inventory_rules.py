import pytest

from app.crypto.secrets import hash_password, verify_password
from app.domain import inventory as rules
from app.domain.passwords import check_password
from app.errors import InvalidRequest, WeakPassword


@pytest.mark.parametrize("password", ["short", "x" * 129, "1234567890", "aaaaaaaaaaaaaa", "ababababab", "QWERTYUIOP"])
def test_weak_passwords(password):
    with pytest.raises(WeakPassword):
        check_password(password)


def test_password_must_not_contain_the_number_or_email():
    with pytest.raises(WeakPassword):
        check_password("pw-13800138000!", phone_e164="+8613800138000")
    with pytest.raises(WeakPassword):
        check_password("LiHua.Garden.1957", email="lihua.garden@example.com")
    check_password("peony-garden-1957", phone_e164="+8613800138000", email="li@example.com")


async def test_argon2id_hash_and_verify():
    phc = await hash_password("correct horse battery")
    assert phc.startswith("$argon2id$")
    assert await verify_password("correct horse battery", phc)
    assert not await verify_password("wrong horse battery", phc)
    assert not await verify_password("x", "not a phc string")


def test_binding_types_are_validated_and_sorted():
    assert rules.binding_types(["payment", "LOGIN", "login"]) == ["login", "payment"]
    with pytest.raises(InvalidRequest):
        rules.binding_types([])
    with pytest.raises(InvalidRequest):
        rules.binding_types(["sms"])


def test_handover_needs_an_heir():
    with pytest.raises(InvalidRequest):
        rules.check_heir_for_disposition(rules.Disposition.HANDOVER, None)
    rules.check_heir_for_disposition(rules.Disposition.UNBIND, None)
    rules.check_heir_for_disposition(rules.Disposition.NOTIFY, "someone")
