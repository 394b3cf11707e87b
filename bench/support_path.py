"""Put the tests' ``support`` package on ``sys.path`` for a bench/ or loadtest/ script.

``support.serve_process`` (``ratesvc serve`` as a child process, waited on
until it answers) is test machinery kept with the tests, not in the ratesvc
wheel; the benchmarks and the load test start the service the same way.
Import this module before ``support``.  ``loadtest/support_path.py`` is a
link to this file, so both directories share one helper.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"

if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))
