"""Without the simulators' package, the commands that need it say how to install it.

The simulators (packages/ratesvc-sim) are not in the ratesvc wheel or the
default image.  Here ``ratesvc_sim`` is made unimportable in the child, as it
is where only ratesvc was installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ratesvc.cli import SIMULATORS_MISSING

WITHOUT_SIMULATORS = (
    "import sys; sys.modules['ratesvc_sim'] = None; "
    "from ratesvc.cli import main; raise SystemExit(main())"
)


def _ratesvc_without_simulators(
    args: list[str], environment: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SIMULATORS, *args],
        env={"PATH": "/usr/bin:/bin", **environment},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "environment"),
    [(["simulate", "--port", "0"], {}), (["serve"], {"RATESVC_SIMULATE": "1"})],
    ids=["simulate", "serve-simulate"],
)
def test_one_line_and_status_2_without_the_simulators(
    args: list[str], environment: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    result = _ratesvc_without_simulators(
        args, {**environment, "RATESVC_DATA_DIR": str(data_dir)}, tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [SIMULATORS_MISSING]
    # Refused before anything started: no embedded Redis or PostgreSQL was set up.
    assert not data_dir.exists()
