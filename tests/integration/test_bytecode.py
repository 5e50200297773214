"""The agent's Python side comes with bytecode for the interpreter under
test (the install compiles for PYTHON and PYTHON_BYTECODE_FOR, as the
packages do on their target), so no process compiles the agent at start-up;
where bytecode is missing and cannot be written, the agent says so (info)
with the command that fixes it. Without bytecode a gunicorn worker kept
~800 KB more heap (test_memory.py)."""
import os
import shutil
import subprocess

from agent import PREFIX, PYTHON, agent_env

PY_SIDE = os.path.join(PREFIX, "lib", "tigerops", "python")
NOTE = "no bytecode of the agent for"


def run_under(lib, **extra):
    env = agent_env(None, PYTHONDONTWRITEBYTECODE="1", TIGEROPS_LOG_LEVEL="info", **extra)
    env["LD_PRELOAD"] = lib
    code = "import sys, tigerops._bootstrap as b; print(b._started, sys.implementation.cache_tag)"
    return subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_install_has_bytecode_for_this_interpreter_and_starts_without_compiling():
    tag = subprocess.run([PYTHON, "-c", "import sys; print(sys.implementation.cache_tag)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    missing = []
    for d, _, files in os.walk(PY_SIDE):
        if os.path.basename(d) == "__pycache__":
            continue
        for f in files:
            if f.endswith(".py") and not os.path.exists(
                    os.path.join(d, "__pycache__", "%s.%s.pyc" % (f[:-3], tag))):
                missing.append(os.path.join(d, f))
    assert not missing, "no %s bytecode for %s" % (tag, missing)
    r = run_under(os.path.join(PREFIX, "lib", "libtigerops.so"))
    assert r.returncode == 0 and r.stdout.split()[0] == "True", r.stderr
    assert NOTE not in r.stderr, r.stderr


def test_a_copy_without_bytecode_says_how_to_compile_it_and_still_traces(tmp_path):
    copy = tmp_path / "prefix"
    shutil.copytree(PREFIX, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    r = run_under(str(copy / "lib" / "libtigerops.so"))
    assert r.returncode == 0 and r.stdout.split()[0] == "True", r.stderr
    tag = r.stdout.split()[1]
    side = str(copy / "lib" / "tigerops" / "python")
    assert "%s %s: " % (NOTE, tag) in r.stderr, r.stderr
    assert " -m compileall %s" % side in r.stderr, r.stderr
    # The command it gives works: afterwards the note is gone.
    compiled = subprocess.run([PYTHON, "-m", "compileall", "-q", side], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    again = run_under(str(copy / "lib" / "libtigerops.so"))
    assert again.returncode == 0 and NOTE not in again.stderr, again.stderr
