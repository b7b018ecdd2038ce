from pathlib import Path

import pytest

from core.settings import Settings, SettingsError, load_settings, without_password


def test_admin_ids_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HV_ADMIN_IDS", "11, 22,33")
    assert Settings().admin_ids == [11, 22, 33]


def test_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'hematovision.db'}"
    assert settings.resolved_broker_url == "filesystem://"
    assert settings.resolved_storage_dir == tmp_path / "images"


def test_the_token_is_kept_secret_in_reprs() -> None:
    settings = Settings(bot_token="123:SECRET-TOKEN")
    assert "SECRET-TOKEN" not in repr(settings)


def test_red_cells_use_the_shipped_network_unless_the_path_is_emptied(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = Settings().red_cell_model_path
    assert shipped is not None and shipped.with_suffix(".safetensors").is_file()
    monkeypatch.setenv("HV_RED_CELL_MODEL_PATH", "")
    assert Settings().red_cell_model_path is None


def test_database_and_broker_passwords_never_print() -> None:
    settings = Settings(database_url="postgresql+psycopg://hv:pa%3Ass@db.lab:5432/hv",
                        broker_url="redis://:redis-secret@broker.lab:6379/0")
    shown = repr(settings) + str(settings)
    assert "pa%3Ass" not in shown and "redis-secret" not in shown
    assert "postgresql+psycopg://hv:***@db.lab:5432/hv" in shown
    assert "redis://:***@broker.lab:6379/0" in shown


def test_a_url_without_a_password_prints_as_it_is() -> None:
    assert without_password("sqlite:////var/hv.db") == "sqlite:////var/hv.db"
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_password_in_the_query_is_masked_too() -> None:
    shown = without_password("postgresql://hv@db.lab/hv?sslmode=require&password=s3cret")
    assert "s3cret" not in shown and "password=***" in shown and "sslmode=require" in shown


def test_a_short_webhook_secret_is_refused_without_being_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HV_WEBHOOK_SECRET", "x")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "HV_WEBHOOK_SECRET" in str(refused.value) and "32-256" in str(refused.value)
    monkeypatch.setenv("HV_WEBHOOK_SECRET", "not!valid-but-secret-abcdefghijklmnop")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "not!valid" not in str(refused.value)
    monkeypatch.setenv("HV_WEBHOOK_SECRET", "a" * 32)
    assert load_settings().webhook_secret is not None
