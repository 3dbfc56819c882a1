"""Configuration refuses unsafe production settings."""

import pytest

from app import create_app
from config import DEFAULT_SECRET_KEY, ConfigError


@pytest.mark.parametrize("secret", [None, DEFAULT_SECRET_KEY])
def test_production_refuses_to_start_without_a_real_secret_key(secret, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production", "SECRET_KEY": secret, "ENCRYPTION_KEY": "x"})


def test_production_refuses_to_start_without_an_encryption_key(monkeypatch):
    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        create_app({"APP_ENV": "production", "SECRET_KEY": "a-long-random-value-1234567890"})


def test_development_keeps_generated_keys_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    from flask import Flask

    from config import load_config

    first, second = Flask("a", instance_path=str(tmp_path)), Flask("b", instance_path=str(tmp_path))
    load_config(first)
    load_config(second)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] != DEFAULT_SECRET_KEY
    assert first.config["ENCRYPTION_KEY"] == second.config["ENCRYPTION_KEY"]


def test_an_encryption_key_that_is_not_a_fernet_key_is_refused():
    with pytest.raises(ConfigError, match="Fernet"):
        create_app({"SECRET_KEY": "dev", "ENCRYPTION_KEY": "not-a-key"})
