"""Every setting and domain field declares a type and range, checked before anything
connects; all problems come out at once, one line each, naming the variable."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from ecom_cli.main import main
from online_models.bounds import bounds_of, kind_of
from online_models.config import DOMAIN_ENV_PREFIX, EngineConfig
from streams.settings import ENV_NAMES, OTHER_ECOM_VARIABLES, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1


def _problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    return caught.value.problems


def test_every_field_declares_a_type_and_a_range_its_default_is_inside() -> None:
    for cls in (Settings, EngineConfig):
        for f in fields(cls):
            if f.name == "domain":
                continue
            assert kind_of(f) in (int, float, str), f.name
            bounds = bounds_of(f)
            assert bounds.describe(kind_of(f)), f.name
    assert Settings.from_env({}) == Settings()
    EngineConfig()  # validates itself: the defaults are in range


def _below(f) -> str | None:
    b = bounds_of(f)
    if kind_of(f) is str:
        return "no-such-choice" if b.choices else ("" if b.nonempty else None)
    return None if b.low is None else str(b.low - 1 if kind_of(f) is int else b.low - 0.5)


@pytest.mark.parametrize("cls", [Settings, EngineConfig])
def test_a_value_out_of_range_is_refused_for_every_field(cls) -> None:
    for f in fields(cls):
        if f.name == "domain" or (f.name == "partitions" and cls is EngineConfig):
            continue  # the domain's partitions are ECOM_PARTITIONS
        raw = _below(f)
        if raw is None:
            continue
        key = ENV_NAMES[f.name] if cls is Settings else DOMAIN_ENV_PREFIX + f.name.upper()
        (problem,) = _problems({key: raw})
        assert problem.startswith(f"{key}=") and "must be" in problem, problem


def test_the_reported_cases_are_all_reported_at_once_with_their_ranges() -> None:
    env = {
        "ECOM_DOMAIN_TOP_K": "-1",
        "ECOM_DOMAIN_REC_INTERVAL_MS": "abc",
        "ECOM_DOMAIN_NO_SUCH_FIELD": "1",
        "ECOM_MAX_MESSAGE_BYTES": "-5",
        "ECOM_WEB_PORT": "99999",
        "ECOM_MAX_POLL_RECORDS": "0",
        "ECOM_SNAPSHOT_EVERY_S": "-1",
        "ECOM_WEB_PROT": "6066",
    }
    problems = _problems(env)
    assert len(problems) == len(env), problems
    for key in env:
        assert sum(p.startswith(key) for p in problems) == 1, (key, problems)
    text = "\n".join(problems)
    assert "ECOM_WEB_PORT='99999': must be an integer from 1 to 65535" in text
    assert "ECOM_DOMAIN_TOP_K='-1': must be an integer >= 1" in text
    assert "ECOM_SNAPSHOT_EVERY_S='-1': must be a number > 0" in text
    assert "ECOM_WEB_PROT: unknown setting (did you mean ECOM_WEB_PORT?)" in text
    never_recommends = {"ECOM_DOMAIN_TOP_K": "0"}
    assert _problems(never_recommends) == ["ECOM_DOMAIN_TOP_K='0': must be an integer >= 1"]


def test_domain_partitions_and_cross_field_rules_are_refused() -> None:
    (problem,) = _problems({"ECOM_DOMAIN_PARTITIONS": "3"})
    assert "ECOM_PARTITIONS" in problem
    (problem,) = _problems({"ECOM_DOMAIN_PACING_MIN": "5", "ECOM_DOMAIN_PACING_MAX": "2"})
    assert "pacing_min" in problem
    (problem,) = _problems({"ECOM_HEARTBEAT_INTERVAL_S": "30", "ECOM_SESSION_TIMEOUT_S": "10"})
    assert problem.startswith("ECOM_HEARTBEAT_INTERVAL_S")


def test_every_ecom_variable_the_project_uses_is_a_setting_or_allowed() -> None:
    """The project's own files (tests, benchmarks, Makefile, compose, k8s, Dockerfile)
    must not set a name the worker would refuse as unknown."""
    known = set(ENV_NAMES.values()) | set(OTHER_ECOM_VARIABLES)
    domain = {f.name.upper() for f in fields(EngineConfig)} - {"PARTITIONS"}
    used: set[str] = set()
    places = ["tests", "benchmarks", "scripts", "k8s", "deploy", "docs"]
    files = [p for place in places for p in (ROOT / place).rglob("*") if p.is_file()]
    files += [ROOT / n for n in ("Makefile", "Dockerfile", "docker-compose.yml", "README.md")]
    for path in files:
        if path == Path(__file__).resolve() or "__pycache__" in path.parts:
            continue  # this file spells typos on purpose
        used |= set(re.findall(r"\bECOM_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")))
    assert "ECOM_WEB_PORT" in used and "ECOM_IMAGE" in used  # the scan found the files
    for name in used:
        if name.startswith(DOMAIN_ENV_PREFIX):
            assert name[len(DOMAIN_ENV_PREFIX) :] in domain, name
        elif name not in {"ECOM_DOMAIN"}:
            assert name in known, f"{name} would be refused as an unknown setting"
    Settings.from_env({name: "1" for name in OTHER_ECOM_VARIABLES})


def test_worker_reports_every_problem_before_the_broker_check(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", UNREACHABLE)
    monkeypatch.setenv("ECOM_DOMAIN_TOP_K", "abc")
    monkeypatch.setenv("ECOM_DOMAIN_NO_SUCH_FIELD", "1")
    for command in ("worker", "create-topics", "produce-demo", "demo", "settings"):
        assert main([command]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2, err
        assert "ECOM_DOMAIN_TOP_K='abc': must be an integer >= 1" in err[1]
        assert "ECOM_DOMAIN_NO_SUCH_FIELD" in err[0]
        assert all(line.startswith(f"ecom-stream {command}: configuration error:") for line in err)
        assert "Kafka" not in "\n".join(err) and "Traceback" not in "\n".join(err)


def test_replay_checks_the_domain_variables_first(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("ECOM_DOMAIN_TOP_K", "-1")
    assert main(["replay", str(tmp_path / "missing.jsonl"), "--report", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "ECOM_DOMAIN_TOP_K='-1'" in line


def test_settings_prints_the_effective_values_with_secrets_masked(monkeypatch, capsys) -> None:
    for key, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "hunter2",
        "ECOM_WEB_PORT": "7000",
        "ECOM_DOMAIN_TOP_K": "20",
    }.items():
        monkeypatch.setenv(key, value)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert lines["KAFKA_SASL_PASSWORD"].startswith("***")
    assert lines["ECOM_WEB_PORT"].startswith("7000") and lines["ECOM_DOMAIN_TOP_K"].startswith("20")
    assert lines["ECOM_PARTITIONS"] == "4" and lines["KAFKA_SSL_KEY_PASSWORD"] == ""
    assert set(ENV_NAMES.values()) <= set(lines)
