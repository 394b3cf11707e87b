"""Processes of a test: ones it may have left behind, and a ``ratesvc serve`` that must not start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (a data directory, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def serve_refusing_to_start(environment: dict[str, str], cwd: Path) -> list[str]:
    """Run ``ratesvc serve`` with only ``environment``; assert it stops with status 2.

    Returns its stderr lines, for the test to check what they say.
    """
    result = subprocess.run(
        [sys.executable, "-m", "ratesvc", "serve"],
        env={**environment, "PATH": "/usr/bin:/bin"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()
