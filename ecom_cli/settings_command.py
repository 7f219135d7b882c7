"""`ecom-stream settings`: check the environment and print the effective settings.

One line per variable, `NAME=value`, secrets masked; the domain's hyperparameters
follow as `ECOM_DOMAIN_<FIELD>=value`. A variable set in the environment is marked.
Any problem is reported one line each (by the CLI) with exit code 2.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from typing import Any

from online_models.config import DOMAIN_ENV_PREFIX, EngineConfig
from streams.settings import ENV_NAMES, Settings


def settings_lines(settings: Settings, env: dict[str, str]) -> list[str]:
    """`NAME=value` of every setting and domain field (secrets masked)."""
    shown = settings.redacted()
    lines = []
    for name, key in ENV_NAMES.items():
        lines.append(_line(key, shown[name], key in env))
    cfg = EngineConfig.for_run(settings.partitions, settings.domain)
    for f in fields(cfg):
        if f.name == "partitions":  # the domain's partitions are ECOM_PARTITIONS
            continue
        key = DOMAIN_ENV_PREFIX + f.name.upper()
        lines.append(_line(key, getattr(cfg, f.name), key in env))
    return lines


def _line(key: str, value: Any, from_env: bool) -> str:
    return f"{key}={value}" + ("    # set in the environment" if from_env else "")


def _settings(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    settings = Settings.from_env(env)  # SettingsError: one line per problem, exit 2
    print("\n".join(settings_lines(settings, env)))
    return 0


def add_settings_parser(sub: Any) -> None:
    sub.add_parser(
        "settings",
        help="check the environment and print the effective settings (secrets masked)",
        description="Read every KAFKA_*, ECOM_* and ECOM_DOMAIN_<FIELD> variable as the "
        "worker does, report every problem (wrong type, out of range, unknown name) one "
        "per line with exit code 2, else print each setting's effective value, secrets "
        "masked. Connects to nothing.",
    ).set_defaults(func=_settings)
