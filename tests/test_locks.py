"""The locks pin every dependency pyproject.toml declares, at a version it allows.

make install and the image install with the locks as constraints; a dependency
added to pyproject.toml but not locked would be installed at whatever version
pip finds, unaudited.  `scripts/audit-deps --update` (make lock) re-resolves them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", text)
    }


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        (
            "requirements-dev.lock",
            [
                *PROJECT["dependencies"],
                *PROJECT["optional-dependencies"]["dev"],
                *PROJECT["optional-dependencies"]["load"],
            ],
        ),
    ],
)
def test_every_declared_dependency_is_pinned_within_its_range(
    lock: str, requirements: list[str]
) -> None:
    pins = _pins(lock)
    wrong = []
    for line in requirements:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{line}: {lock} has {version or 'no pin'}")
    assert not wrong, "run `make lock`:\n" + "\n".join(wrong)
