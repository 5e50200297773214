"""packaging/tigerops.ini, the /etc/tigerops/tigerops.ini every package
installs: every setting of the README's table is there, commented out,
with the README's default, and the agent accepts the file uncommented."""
import os
import re
import subprocess

import pytest

from agent import LIB
from conftest import ROOT

INI = os.path.join(ROOT, "packaging", "tigerops.ini")


def readme_rows():
    """[(aliases, default)] from the README's configuration table: names
    joined by " / " are aliases of one setting, by ", " separate settings
    (the default is the first one's)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    table = text.split("| setting | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for row in table.splitlines()[2:]:
        cols = [c.strip() for c in row.strip("|").split("|")]
        defaults = [(re.findall(r"`([^`]*)`", d) or [""])[0] for d in cols[1].split(" / ")]
        for k, group in enumerate(cols[0].split(", ")):
            aliases = re.findall(r"`([A-Z0-9_]+)`", group)
            for i, name in enumerate(aliases):
                default = "" if k else (defaults[i] if len(defaults) == len(aliases) else defaults[0])
                rows.append((aliases, name, default))
    return rows


def ini_entries():
    """[(full name, default)] from the commented-out settings."""
    entries = []
    with open(INI) as f:
        for line in f:
            m = re.match(r"^;([A-Za-z_]+) = ?(.*)$", line.rstrip("\n"))
            if m:
                name = m.group(1)
                full = name if name.startswith(("OTEL_", "TIGEROPS_")) else "TIGEROPS_" + name.upper()
                entries.append((full, m.group(2)))
    return entries


def test_every_readme_setting_is_in_the_file_with_the_readme_default():
    rows = readme_rows()
    assert len(rows) > 30, rows
    entries = dict(ini_entries())
    with open(INI) as f:
        env_only = f.read().split("not from this file", 1)[1]
    for aliases, name, default in rows:
        if name in entries:
            assert entries[name] == default, (name, entries[name], default)
        elif not any(a in entries for a in aliases):
            # Settings the Python side reads from the environment only.
            assert aliases[0] in env_only, "%s: neither in tigerops.ini nor listed as environment-only" % name
    assert not [n for n in entries if n not in {r[1] for r in rows}], "settings the README does not list"


def test_nothing_is_active_by_default():
    with open(INI) as f:
        active = [l for l in f if l.strip() and not l.startswith(";") and not l.startswith("[")]
    assert active == []


@pytest.mark.skipif(not os.path.exists(LIB), reason="needs the build in build/ci/install")
def test_the_agent_accepts_every_setting_uncommented(tmp_path):
    with open(INI) as f:
        text = f.read()
    uncommented = re.sub(r"^;([A-Za-z_]+ = ?\S.*)$", r"\1", text, flags=re.M)
    assert uncommented.count("\n;") < text.count("\n;")
    path = tmp_path / "tigerops.ini"
    path.write_text(uncommented + "\nbogus_setting = 1\n")  # proves warnings are seen
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": LIB, "TIGEROPS_CONFIG": str(path),
           "TIGEROPS_LOG_LEVEL": "warning", "TIGEROPS_EXPORTER": "none"}
    r = subprocess.run(["/usr/bin/python3", "-c", "import tigerops._bootstrap as b; print(b.start())"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "True", r.stderr
    warnings = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(warnings) == 1 and "BOGUS_SETTING" in warnings[0], r.stderr
