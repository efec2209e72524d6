import pytest

from app.crypto.envelope import DecryptionError, FieldCipher, new_data_key, unwrap_data_key, wrap_data_key
from app.settings import KeyRing, SettingsError


def ring(*kids: str) -> KeyRing:
    return KeyRing.parse(",".join(KeyRing.new_key_text(k) for k in kids))


def test_field_round_trip_and_no_plaintext():
    keyring = ring("k1")
    key, wrapped = new_data_key(keyring, "owner-1")
    cipher = FieldCipher("owner-1", key)
    blob = cipher.encrypt("wxid_secret 遗言", "binding", "instructions", "row-1")
    assert b"wxid_secret" not in blob and blob[:1] == b"\x01"
    assert cipher.decrypt(blob, "binding", "instructions", "row-1") == "wxid_secret 遗言"
    assert unwrap_data_key(keyring, "owner-1", wrapped) == key


def test_nonces_differ():
    cipher = FieldCipher("o", new_data_key(ring("k1"), "o")[0])
    assert cipher.encrypt("same", "t", "c", "r") != cipher.encrypt("same", "t", "c", "r")


@pytest.mark.parametrize("where", [("t", "c", "other-row"), ("t", "other-col", "r"), ("other", "c", "r")])
def test_ciphertext_is_bound_to_its_row_and_column(where):
    cipher = FieldCipher("o", new_data_key(ring("k1"), "o")[0])
    blob = cipher.encrypt("x", "t", "c", "r")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, *where)


def test_ciphertext_is_bound_to_its_owner():
    key = new_data_key(ring("k1"), "a")[0]
    blob = FieldCipher("a", key).encrypt("x", "t", "c", "r")
    with pytest.raises(DecryptionError):
        FieldCipher("b", key).decrypt(blob, "t", "c", "r")


def test_wrapped_key_is_bound_to_its_owner_and_kek():
    keyring = ring("k1")
    _, wrapped = new_data_key(keyring, "a")
    with pytest.raises(DecryptionError):
        unwrap_data_key(keyring, "b", wrapped)
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring("k1"), "a", wrapped)  # same id, other key


def test_rotation_keeps_old_keys_readable():
    old = ring("k1")
    key, wrapped = new_data_key(old, "a")
    rotated = KeyRing.parse(KeyRing.new_key_text("k2") + "," + old.serialize())
    assert rotated.active == "k2"
    assert unwrap_data_key(rotated, "a", wrapped) == key
    rewrapped = wrap_data_key(rotated, "a", key)
    assert rewrapped.kek_id == "k2"
    assert unwrap_data_key(rotated, "a", rewrapped) == key


def test_missing_kek_is_a_clear_error():
    _, wrapped = new_data_key(ring("k1"), "a")
    with pytest.raises(DecryptionError, match="k1"):
        unwrap_data_key(ring("k9"), "a", wrapped)


@pytest.mark.parametrize("text", ["", "nokid", "k1:" + "A" * 10, ":abc"])
def test_bad_keyring_text(text):
    with pytest.raises(SettingsError):
        KeyRing.parse(text)
