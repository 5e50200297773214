"""The request path's instruction budget, guarded by callgrind counts (which
repeat run to run; wall time does not, so nothing here is timed).

Added instructions per hello request (Flask, in process, OTLP export on to
a local sink, all threads counted: the exporter's encode and send too) and
per SQLAlchemy statement, each the difference of a short and a 3x longer
run under callgrind, bare minus agent, settled (the layout's luck in
Flask's ContextVar set and reset left out: see below). A figure fails when
it exceeds its budget (README, Benchmarks) by more than 10%. bench/cost_profile.py prints
the same figures with the functions they go to."""
import os
import shutil
import sys

import pytest

from agent import DEBIAN_PYTHON, PREFIX, ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import cost_profile  # noqa: E402

# (workload, mode): (budget, ceiling) in added instructions per request or
# statement. The ceiling is what the code measures today where the budget
# is not met yet (README, "Instruction budget"): a regression past it fails
# now, and the budget itself is checked as an expected failure (not
# strict: an XPASS in the report says to lower the ceiling). A budget that
# is met with room has its ceiling at the budget, and no expected failure.
# Metrics are on (the default) in every mode: http.server.request.duration
# and active_requests are recorded for 100% of requests, which needs the
# route even when the trace is not kept (about +2.7k in the 1% modes).
#
# Counts repeat run to run for one build (a 1% figure is composed from an
# unsampled run and the 100% one, so no random trace choice moves it:
# bench/cost_profile.py), but a change anywhere in the agent
# can move them by thousands without touching the request path: CPython
# 3.11's type attribute cache (4,096 entries, keyed by type version tag and
# name) collides differently when the agent creates or changes a type, and
# a colliding lookup in Flask's or SQLAlchemy's hot loop walks the MRO every
# time. Measured: the SQL figure was +3,248 per statement at 64e1297 and
# +200 one commit later, and +2,335 at 00c10b5 and +6,420 at the next
# commit, each time with the same agent functions per statement (the
# difference is all in type lookups of SQLAlchemy's own code). The hash
# seed alone moves them too: tail +4,568 / +5,935 / +4,436 and SQL +6,425 /
# +9,483 / +6,862 under PYTHONHASHSEED 0 / 1 / 2 of one build, so each
# figure here is the median of those three runs (cost_profile.measure_median).
# Today's medians (sixteenth session, 6ac7fca, on another machine than
# the fifteenth's, callgrind with --fair-sched=yes, all threads) are
# +7,683, +2,723 and +2,977 for the hello rows below (ranges over the
# seeds: +7,618..+8,145, +2,642..+2,912, +2,700..+3,092; the fifteenth
# session's build measured +2,424 head only on this machine, +1,789 on
# its own); the SQL statement's are in the README.
# The install prefix's path moves these medians too (it is in LD_PRELOAD,
# so in the children's environment): in the ninth session a fresh clone
# measured tail keep at +5,137 where this checkout measured +2,957, and
# the 100% request thread at +9,429 against +7,289; in the fourteenth the
# fresh clone's 100% total was +202 over this checkout's. The ceilings of
# the head and SQL totals stay wide for that reason. Tail keep meets its
# budget with room, so it is checked as a hard test: as its ceiling (on
# the request thread, as the hello ceilings are; its exporter adds ~22).
# 100% sampling's budget was a hard check on all threads from the
# fifteenth to the sixteenth session (MET), on a median 317 under the
# budget; in the seventeenth a fresh clone measured +9,238 (+8,343 ..
# +9,978 by seed; request thread +7,131) with the agent's own objects
# unchanged, and the hard check failed.
#
# Most of that was one piece of luck, found in the eighteenth session:
# Flask sets and resets two ContextVars per request, whose cost depends on
# the shape of the context's HAMT, which depends on the two variables'
# addresses. In some layouts the agent's run draws a tree one level deeper
# than the bare run's: +1,465 a hello request (seed 1 at 100% here; seed 2
# of the head row, +1,472), in CPython code the agent does not call.
# Under ASLR every process draws it afresh, traced or not, so the figures
# checked are the settled ones (cost_profile: that difference left out,
# when both runs make the same ContextVar calls); the raw ones are printed
# with them. Settled, 100% measures +7,549 (+7,431 .. +7,933) from the
# CLI here, but +8,405 (+8,315 .. +8,659) under this test, whose
# LD_PRELOAD is the prefix's absolute path: a few bytes more of
# environment moved every seed by ~850, four more type attribute cache
# misses a request in Flask's and werkzeug's own code (_PyType_Lookup from
# the eval loop's attribute loads), none in the agent's. That is less
# room under the hard limit (8,800) than the layouts have moved it, so
# the budget stays an expected failure (not strict).
#
# The hello figures are the request thread's: the exporter thread's share
# depends on how many batches the scheduling of a loaded machine cut (a CI
# run measured +20k on other threads where a quiet one measures +5.4k), so
# it is printed, not asserted. The SQL figure stays the all-threads total.
BUDGETS = {
    # 100% sampling (the ceiling: request thread; the budget: all threads)
    ("hello", "full"): (8000, 11000),
    # 1%, tail keep on (every trace recorded until its root ends): +2,274
    # (+2,273 .. +2,596) at 1fc8235, and every fresh-clone CI run since the
    # thirteenth session passed the budget check, so the budget is the ceiling.
    ("hello", "tail"): (5000, 5000),
    # 1%, head sampling only, metrics on (the default). The budget cannot
    # hold with the metrics recorded for every request: given its route
    # and status for free (bench/experiments/head-metrics-floor.patch),
    # an unrecorded request's metrics still cost +671 over head_traces
    # (twenty-first session, README), whose own best layout is +1,255.
    # An expected failure until the owner sets the metrics' share.
    ("hello", "head"): (1500, 4500),
    # The same with the metrics off (OTEL_METRICS_EXPORTER=none): the
    # traces' own cost, an unrecorded request running with its context
    # only (middleware.c run_unrecorded). Within the budget at every seed
    # since the seventeenth session (+1,046, +909 .. +1,391), but with
    # less room than the install path's recorded swings (~2,000), so the
    # ceiling that fails is wider and the budget is checked as the head
    # row's is; its own objects' ceiling (OWN) is the tight guard. In the
    # nineteenth session a fresh clone measured +2,732 on the request
    # thread (18 under the old ceiling's limit of 2,750) with its own
    # objects at +1,032, as here: ~1,060 of type attribute cache misses in
    # Flask's and werkzeug's attribute loads that the bare run of that
    # layout does not have. The ceiling leaves room for that swing.
    ("hello", "head_traces"): (1500, 3500),
    ("sql", "full"): (2000, 8000),      # one SQLAlchemy Core statement, 100%
}
# Budgets met with room whose ceiling is not the budget itself (it is on
# another figure): their budget check is a hard test, not an expected failure.
MET = set()
# The same runs counted outside the interpreter only (the agent's objects,
# libc, zlib): what the type cache cannot move (the children's memory
# layout still can, a little: see cost_profile.envs), so these ceilings sit
# about 10% above today's figures and catch a regression of the agent's own
# C code that the totals' wide ceilings would let through. The hello ones
# are the request thread's, as above: a fresh-clone CI run measured +13,467
# at 100% over all threads where this machine measured +11,059 on the same
# commit, the exporter's batches again. The SQL total's ceiling is that
# wide because adding four lines to the benchmark's own script moved its
# bare figure by 5,400 per statement.
OUTSIDE = {
    # request thread +4,333 (sixteenth session, 6ac7fca; +4,478 at a9b202f,
    # +4,905 at 1fc8235, much of the differences libc's lottery), all
    # threads +6,441
    ("hello", "full"): 4950,
    ("hello", "tail"): 2350,    # +2,109
    ("hello", "head"): 2000,    # +1,823
    ("hello", "head_traces"): 1000,    # +916 (seventeenth session)
    ("sql", "full"): 2350,      # all threads +2,070
}
# The agent's own objects alone (libtigerops*, _tigerops*), exclusive: the
# outside figures above include libc, whose allocator also serves Python's
# own objects, and its luck moved the hello request thread's outside figure
# by ~800 between hash seeds of one build; this one moves by ~10, so its
# ceilings sit ~8% above today's figures. The hello ones are the request
# thread's, as above. Both figures are summed by object from the callgrind
# files themselves (cost_profile.object_costs), code inlined from the
# agent's headers included (since the twelfth session; before, they came
# from callgrind_annotate's table, which lists inlined code without its
# object: hello 100% at 50fbb02, seed 0, all threads' own objects measure
# +7,067 by the new sum, where the eleventh session's median was +6,150).
OWN = {
    ("hello", "full"): 4250,    # request thread +3,933 (all threads +6,014), sixteenth session, 6ac7fca
    ("hello", "tail"): 2250,    # +2,097
    ("hello", "head"): 2050,    # +1,898
    ("hello", "head_traces"): 1120,    # +1,039 (seventeenth session)
    ("sql", "full"): 1950,      # all threads +1,741 (request thread +898)
}
SLACK = 1.10
# Hash seeds per figure where three are not needed: head_traces' hard
# checks are its own objects (the same at every seed, +1,060 at 0, 1 and
# 2) and a ceiling with room over its worst seed; one seed saves CI four
# callgrind runs (~3 minutes).
SEEDS = {("hello", "head_traces"): 1}

pytestmark = [
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed"),
    # The budget is the Debian stack's (CPython 3.11, Flask 2.2, SQLAlchemy
    # 1.4); other interpreters count differently.
    pytest.mark.skipif(not DEBIAN_PYTHON, reason="budgets are set for Debian's /usr/bin/python3 stack"),
]

_figures = {}


def added(workload, mode):
    """The figure, measured once per test session: 300 and 900 iterations
    after the benchmark's 2,000 warm-up requests (fewer leave first-batch
    and specialisation costs in the difference), the median over three
    hash seeds (three memory layouts: one of them alone can be unlucky),
    or over SEEDS."""
    if (workload, mode) not in _figures:
        seeds = SEEDS.get((workload, mode), 3)
        _figures[(workload, mode)] = cost_profile.measure_median(PREFIX, workload, mode, seeds=seeds, n=300, warmup=2000,
                                                                 python="/usr/bin/python3")
    return _figures[(workload, mode)]


def _check(workload, mode, limit, what, key=None):
    """The settled figure (cost_profile: the layout's luck in Flask's
    ContextVar set and reset left out) against limit; the raw ones are
    printed with it."""
    r = added(workload, mode)
    key = key or ("request_settled" if workload == "hello" else "total_settled")
    figure = r[key]
    seeds = ", ".join("%+.0f" % run[key] for run in r["runs"])
    luck = ", ".join("%+.0f" % run["contextvar_luck"] for run in r["runs"])
    print("%s at %s: %+.0f per iteration raw, %+.0f settled (request thread %+.0f raw, %+.0f settled; other "
          "threads %+.0f; %s by seed %s; ContextVar luck by seed %s)"
          % (workload, mode, r["total"], r["total_settled"], r["request"], r["request_settled"], r["exporter"], key,
             seeds, luck))
    assert figure <= limit * SLACK, (
        "%s at %s: %+.0f instructions per iteration settled (%+.0f raw; request thread %+.0f settled, other "
        "threads %+.0f; %s by hash seed: %s; ContextVar luck by seed: %s) over the %s of %d (+10%%); "
        "bench/cost_profile.py --workload %s --mode %s shows where they go"
        % (workload, mode, r["total_settled"], r["total"], r["request_settled"], r["exporter"], key, seeds, luck,
           what, limit, workload, mode))


@pytest.mark.parametrize("workload,mode", sorted(BUDGETS))
def test_added_instructions_stay_under_the_ceiling(workload, mode):
    _check(workload, mode, BUDGETS[(workload, mode)][1], "ceiling")


def _check_part(workload, mode, part, limit, what):
    """One figure of part ("outside" or "own") against its ceiling: the
    request thread's for the hello modes, all threads' for SQL."""
    r = added(workload, mode)
    key = part + "_request" if workload == "hello" else part
    seeds = ", ".join("%+.0f" % run[key] for run in r["runs"])
    print("%s at %s: %+.0f %s per iteration (request thread %+.0f; by hash seed: %s)"
          % (workload, mode, r[part], what, r[part + "_request"], seeds))
    assert r[key] <= limit * SLACK, (
        "%s at %s: %+.0f instructions per iteration %s (request thread %+.0f; by hash seed: %s), over the "
        "ceiling of %d (+10%%); bench/cost_profile.py --workload %s --mode %s shows where they go"
        % (workload, mode, r[part], what, r[part + "_request"], seeds, limit, workload, mode))


@pytest.mark.parametrize("workload,mode", sorted(OUTSIDE))
def test_added_instructions_outside_the_interpreter_stay_under_their_ceiling(workload, mode):
    _check_part(workload, mode, "outside", OUTSIDE[(workload, mode)], "outside the interpreter")


@pytest.mark.parametrize("workload,mode", sorted(OWN))
def test_the_agents_own_instructions_stay_under_their_ceiling(workload, mode):
    _check_part(workload, mode, "own", OWN[(workload, mode)], "in the agent's own objects")


# Not strict: the type cache (see above) can move a figure under its budget
# without the agent's own cost changing. An XPASS in the report is the sign
# to look at the function table and lower the ceiling.
_NOT_MET = pytest.mark.xfail(strict=False,
                             reason="budget not met yet (README, Instruction budget): lower the ceiling when it is")


@pytest.mark.parametrize("workload,mode", [
    pytest.param(workload, mode, marks=() if (workload, mode) in MET else _NOT_MET)
    for (workload, mode), (budget, ceiling) in sorted(BUDGETS.items()) if ceiling > budget])
def test_added_instructions_meet_the_budget(workload, mode):
    # The budget is the issue's: all threads, the exporter's encode and send
    # included. Not strict, so a loaded machine's extra batches cannot fail it.
    _check(workload, mode, BUDGETS[(workload, mode)][0], "budget", key="total_settled")


CALLGRIND_SAMPLE = """# callgrind format
events: Ir
fn=flask_push
5 10
cfn=PyContextVar_Set
calls=2 0
7 500
cfn=PyContextVar_Reset
calls=2 0
8 300
cfn=PyDict_SetItem
calls=1 0
9 40
fn=PyContextVar_Set
1 200
cfn=PyContextVar_Reset
calls=1 0
2 90
"""


def test_the_contextvar_figure_counts_calls_into_set_and_reset_from_outside_them(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text(CALLGRIND_SAMPLE)
    # the nested call (Set into Reset) is already in Set's inclusive cost
    assert cost_profile.calls_into(str(path), cost_profile.CONTEXTVAR_FUNCS) == (4, 800)


def test_only_the_same_contextvar_calls_in_both_runs_are_left_out_as_luck():
    assert cost_profile.contextvar_luck((4.0, 4263.0), (4.0, 2798.0)) == 1465.0
    assert cost_profile.contextvar_luck((4.0, 2700.0), (4.0, 2798.0)) == -98.0
    # the agent's own ContextVars (context mode) are its cost
    assert cost_profile.contextvar_luck((8.0, 5600.0), (4.0, 2798.0)) == 0.0
