"""Every subcommand's --help gives each option's meaning and default; the top-level
help lists every command; Kafka commands point at the environment and `settings`."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from ecom_cli.main import build_parser, main


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped


def test_every_option_of_every_subcommand_has_help_and_shows_its_default(capsys) -> None:
    commands = _subcommands()
    assert len(commands) >= 11
    for name, parser in commands.items():
        text = _help([name], capsys)
        text = text[text.index("options:") :]  # not the description above
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest}: no help text"
            if not action.option_strings:
                continue  # positional arguments have no default
            words = " ".join(action.help.split()[:3])
            assert words in text, f"{name} {action.option_strings}: help not shown"
            start = text.index(words)
            after = text[start : start + len(" ".join(action.help.split())) + 40].lower()
            assert "default" in after or "(required)" in after, (name, action.option_strings)


def test_the_top_level_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in _subcommands():
        assert f"\n    {name}" in text, name
    assert "ecom-stream settings" in text


@pytest.mark.parametrize("command", ["worker", "create-topics", "demo", "produce-demo", "produce"])
def test_kafka_commands_say_configuration_comes_from_the_environment(command, capsys) -> None:
    text = _help([command], capsys)
    assert "environment" in text and "ecom-stream settings" in text


def test_python_dash_m_ecom_cli_is_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ecom_cli", "settings", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "secrets" in done.stdout and "usage: ecom-stream" in done.stdout
