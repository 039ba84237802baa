"""Settings from the environment and .streamlit/secrets.toml, refused clearly when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring_core.config import load_settings
from monitoring_core.errors import ConfigError, StoreUnavailable
from monitoring_core.storage import open_store
from monitoring_core.storage.sqlite import SqliteStore


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in ("MONGODB_URI", "FAIRWATCH_BACKEND", "FAIRWATCH_DATA_DIR", "FAIRWATCH_SEED_DEMO",
                 "FAIRWATCH_SDK_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAIRWATCH_SECRETS_FILE", str(tmp_path / "secrets.toml"))


def test_defaults_use_the_embedded_store_under_data():
    settings = load_settings()
    assert not settings.uses_mongodb and settings.database_path == Path("data") / "fairwatch.db"
    assert (settings.sdk_batch_size, settings.sdk_flush_interval_s) == (10, 5.0)
    assert settings.retention_prediction_days == 90


def test_environment_overrides_the_secrets_file(monkeypatch, tmp_path):
    (tmp_path / "secrets.toml").write_text(
        'MONGODB_URI = "mongodb://db.example:27017"\n[fairwatch]\ndata_dir = "/srv/fw"\nseed_demo = false\n'
        'sdk_batch_size = 50\n')
    from_file = load_settings()
    assert from_file.uses_mongodb and from_file.mongodb_uri.get_secret_value() == "mongodb://db.example:27017"
    assert (from_file.data_dir, from_file.seed_demo, from_file.sdk_batch_size) == (Path("/srv/fw"), False, 50)
    monkeypatch.setenv("FAIRWATCH_SDK_BATCH_SIZE", "7")
    monkeypatch.setenv("FAIRWATCH_BACKEND", "embedded")
    overridden = load_settings()
    assert overridden.sdk_batch_size == 7 and not overridden.uses_mongodb


def test_bad_values_name_the_setting_and_its_source(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRWATCH_SDK_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="FAIRWATCH_SDK_BATCH_SIZE: Input should be a valid integer"):
        load_settings()
    monkeypatch.delenv("FAIRWATCH_SDK_BATCH_SIZE")
    (tmp_path / "secrets.toml").write_text('[fairwatch]\nsdk_flush_interval_s = -1\n')
    with pytest.raises(ConfigError, match=r"sdk_flush_interval_s in \[fairwatch\] of .*secrets.toml"):
        load_settings()
    (tmp_path / "secrets.toml").write_text('MONGODB_URI = "postgres://user:hunter2@db"\n')
    with pytest.raises(ConfigError, match="must start with mongodb://") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    (tmp_path / "secrets.toml").write_text("[fairwatch\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_open_store_follows_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "fw"))
    store = open_store(load_settings())
    assert isinstance(store, SqliteStore) and (tmp_path / "fw" / "fairwatch.db").exists()
    store.close()
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?directConnection=true")
    monkeypatch.setenv("FAIRWATCH_MONGODB_TIMEOUT_MS", "200")
    with pytest.raises(StoreUnavailable, match="cannot reach MongoDB at 127.0.0.1:9"):
        open_store(load_settings())
    monkeypatch.delenv("MONGODB_URI")
    monkeypatch.setenv("FAIRWATCH_BACKEND", "mongodb")
    with pytest.raises(ConfigError, match="MONGODB_URI is not set"):
        open_store(load_settings())


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_data_dir_is_a_configuration_error(monkeypatch, tmp_path, value):
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", value)
    with pytest.raises(ConfigError, match="FAIRWATCH_DATA_DIR: Value error, must not be empty"):
        load_settings()
    monkeypatch.delenv("FAIRWATCH_DATA_DIR")
    (tmp_path / "secrets.toml").write_text(f'[fairwatch]\ndata_dir = "{value}"\n')
    with pytest.raises(ConfigError, match=r"data_dir in \[fairwatch\] of .*: Value error, must not be empty"):
        load_settings()
