"""`ratesvc --help` and each command's help: plain text that names every command."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["serve", "simulate", "migrate", "purge"]


def _help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ratesvc", *args, "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def test_top_level_help_is_plain_text_and_lists_every_command() -> None:
    text = _help()
    assert "`" not in text, text
    description = text.split("positional arguments")[0]
    for command in COMMANDS:
        assert command in description, text


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_is_plain_text(command: str) -> None:
    text = _help(command)
    assert "`" not in text, text
    assert text.startswith(f"usage: ratesvc {command}"), text
