"""One help format for every subcommand: each option says what it does and its default.

argparse's ArgumentDefaultsHelpFormatter appends "(default: None)" to required options
and to options whose default is spelled out in their help already; this one appends
the default only when the help does not state it, and "(required)" for required ones.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any


class DefaultsHelpFormatter(argparse.HelpFormatter):
    # Lines never break inside a hyphenated word: `ecom-stream settings` stays whole.
    def _split_lines(self, text: str, width: int) -> list[str]:
        text = re.sub(r"\s+", " ", text).strip()
        return textwrap.wrap(text, width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = re.sub(r"\s+", " ", text).strip()
        return textwrap.fill(
            text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f"{text} (required)" if action.option_strings else text
        if not action.option_strings:  # positional arguments have no default
            return text
        if action.default is None:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


def apply_help_format(subparsers: Any) -> None:
    """Give every registered subcommand the format above (one place for all)."""
    for parser in subparsers.choices.values():
        parser.formatter_class = DefaultsHelpFormatter
