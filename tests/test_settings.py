"""One settings object from the environment: documented, validated, never leaking secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streams.settings import ENV_NAMES, Settings, SettingsError

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_variable_is_documented_in_the_readme_table():
    documented = {name for name in ENV_NAMES.values() if f"| `{name}` |" in README}
    missing = set(ENV_NAMES.values()) - documented - {"ECOM_DOMAIN"}
    assert not missing, f"undocumented: {sorted(missing)}"


def test_defaults_bind_the_web_server_to_loopback():
    s = Settings.from_env({})
    assert (s.web_host, s.web_port) == ("127.0.0.1", 6066)


def test_prod_profile_refuses_to_start_without_sasl_ssl():
    with pytest.raises(SettingsError, match="SASL_SSL"):
        Settings.from_env({"ECOM_PROFILE": "prod"})
    with pytest.raises(SettingsError, match="SASL"):
        Settings.from_env({"ECOM_PROFILE": "prod", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    ok = Settings.from_env(
        {
            "ECOM_PROFILE": "prod",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "s3cr3t",
        }
    )
    assert ok.sasl_mechanism == "SCRAM-SHA-512"


def test_secrets_never_appear_in_repr_or_redacted_view(caplog):
    s = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "hunter2",
            "KAFKA_SSL_KEY_PASSWORD": "k3y",
        }
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings: %s %s", s, s.redacted())
    assert "hunter2" not in caplog.text and "k3y" not in caplog.text
    assert s.redacted()["sasl_password"] == "***"


def test_numbers_are_checked_and_domain_overrides_are_read():
    with pytest.raises(SettingsError, match="ECOM_PARTITIONS"):
        Settings.from_env({"ECOM_PARTITIONS": "four"})
    s = Settings.from_env({"ECOM_PARTITIONS": "8", "ECOM_DOMAIN_TOP_K": "20"})
    assert s.partitions == 8 and s.domain == {"top_k": 20.0}
    from online_models.config import EngineConfig

    assert EngineConfig().with_overrides(s.domain).top_k == 20
    with pytest.raises(KeyError):
        EngineConfig().with_overrides({"no_such_knob": 1})
