"""The request path's instruction budget, guarded by callgrind counts (which
repeat run to run; wall time does not, so nothing here is timed).

Added instructions per hello request (Flask, in process, OTLP export on to
a local sink, all threads counted: the exporter's encode and send too) and
per SQLAlchemy statement, each the difference of a short and a 3x longer
run under callgrind, bare minus agent. A figure fails when it exceeds its
budget (README, Benchmarks) by more than 10%. bench/cost_profile.py prints
the same figures with the functions they go to."""
import os
import shutil
import sys

import pytest

from agent import DEBIAN_PYTHON, PREFIX, ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import cost_profile  # noqa: E402

# (workload, mode): budget in added instructions per request or statement.
BUDGETS = {
    ("hello", "full"): 8000,   # 100% sampling
    ("hello", "tail"): 5000,   # 1%, tail keep on (every trace recorded until its root ends)
    ("hello", "head"): 1500,   # 1%, head sampling only
    ("sql", "full"): 2000,     # one SQLAlchemy Core statement, 100%
}
SLACK = 1.10

pytestmark = [
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed"),
    # The budget is the Debian stack's (CPython 3.11, Flask 2.2, SQLAlchemy
    # 1.4); other interpreters count differently.
    pytest.mark.skipif(not DEBIAN_PYTHON, reason="budgets are set for Debian's /usr/bin/python3 stack"),
]


@pytest.mark.parametrize("workload,mode", sorted(BUDGETS))
def test_added_instructions_stay_within_budget(workload, mode):
    # Short runs: 300 and 900 iterations after 200 warm-up requests; the
    # 1% modes sample a handful of random traces, which moves a figure by
    # tens of instructions, far inside the 10%.
    r = cost_profile.measure(PREFIX, workload, mode, n=300, warmup=200, python="/usr/bin/python3")
    budget = BUDGETS[(workload, mode)]
    assert r["total"] <= budget * SLACK, (
        "%s at %s: %+.0f instructions per iteration (request thread %+.0f, other threads %+.0f) "
        "over the budget of %d (+10%%); bench/cost_profile.py --workload %s --mode %s shows where they go"
        % (workload, mode, r["total"], r["request"], r["exporter"], budget, workload, mode))
