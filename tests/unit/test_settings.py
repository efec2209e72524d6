import pytest

from app.settings import SettingsError, load_settings


def test_embedded_defaults_generate_keys_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HEIRLINE_VAR_DIR", str(tmp_path / "var"))
    for name in ("HEIRLINE_SECRET_KEY", "HEIRLINE_KEK", "HEIRLINE_DATABASE_URL", "HEIRLINE_ENV"):
        monkeypatch.delenv(name, raising=False)
    first = load_settings()
    assert first.database_url == f"sqlite:///{tmp_path / 'var' / 'heirline.db'}"
    assert set(first.generated) == {"secret_key", "kek"}
    assert "generated a new" in caplog.text
    assert oct((tmp_path / "var" / "kek").stat().st_mode)[-3:] == "600"
    second = load_settings()
    assert second.secret_key == first.secret_key and second.keyring == first.keyring
    assert not first.cookie_secure


def test_production_refuses_to_start_without_explicit_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("HEIRLINE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HEIRLINE_ENV", "production")
    monkeypatch.delenv("HEIRLINE_SECRET_KEY", raising=False)
    monkeypatch.delenv("HEIRLINE_KEK", raising=False)
    with pytest.raises(SettingsError, match="HEIRLINE_SECRET_KEY"):
        load_settings()
    assert not (tmp_path / "kek").exists()


def test_production_with_keys_has_secure_cookies(monkeypatch):
    monkeypatch.setenv("HEIRLINE_ENV", "production")
    monkeypatch.setenv("HEIRLINE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HEIRLINE_KEK", "k1:" + "A" * 43)
    settings = load_settings()
    assert settings.cookie_secure and settings.keyring.active == "k1"


@pytest.mark.parametrize("name, value", [("ENV", "staging"), ("DATABASE_URL", "mysql://x"), ("OTP_TTL_SECONDS", "ten"),
                                         ("SECRET_KEY", "short"), ("KEK", "k1:tooshort")])
def test_bad_settings_are_explained(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv("HEIRLINE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(f"HEIRLINE_{name}", value)
    with pytest.raises(SettingsError, match=f"HEIRLINE_{name}"):
        load_settings()
