"""System-wide mode: the library in /etc/ld.so.preload, so every process on
the host loads it. Each command runs in a private mount namespace where an
overlay on /etc adds ld.so.preload (and /etc/tigerops/tigerops.ini) from a
temporary folder: the host's real /etc is never written. Non-Python tools
and setuid programs behave byte for byte as without the preload, whether
the mode is off (the default) or on; a Flask app the filter includes is
traced, one it excludes (by argv or by executable path) is not."""
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from agent import APPS, DEBIAN_PYTHON, LIB, PYTHON, Server, clean_env, free_port, server_spans

PYDIR = os.path.join(os.path.dirname(os.path.realpath(LIB)), "tigerops", "python")

# Mount an overlay on /etc whose upper layer is $0/up, then exec the command:
# only the command (and its children) runs with the preload.
ENTER = ('mount -t overlay tigerops-test -o lowerdir=/etc,upperdir="$0/up",workdir="$0/work" /etc'
         ' && exec "$@"')


def _namespaces_work():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "up"))
        os.makedirs(os.path.join(d, "work"))
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", ENTER, d, "true"],
                           capture_output=True)
        return r.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(),
                                reason="needs root, unshare --mount and overlayfs")


class Etc:
    """The /etc a command sees: the host's, plus ld.so.preload and the ini."""

    def __init__(self, preload=True, ini=None):
        self.dir = tempfile.mkdtemp(prefix="tigerops-etc-")
        os.chmod(self.dir, 0o755)  # a setuid program run as nobody reads ld.so.preload through it
        up = os.path.join(self.dir, "up")
        os.makedirs(os.path.join(self.dir, "work"))
        os.makedirs(os.path.join(up, "tigerops"))
        if preload:
            with open(os.path.join(up, "ld.so.preload"), "w") as f:
                f.write(LIB + "\n")
        if ini is not None:
            with open(os.path.join(up, "tigerops", "tigerops.ini"), "w") as f:
                f.write(ini)

    def argv(self, argv):
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", ENTER, self.dir] + list(argv)

    def run(self, argv, env=None, **kw):
        return subprocess.run(self.argv(argv), env=env if env is not None else clean_env(),
                              capture_output=True, timeout=120, **kw)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def etc():
    made = []

    def make(**kw):
        e = Etc(**kw)
        made.append(e)
        return e
    yield make
    for e in made:
        e.cleanup()


def outcome(r):
    return r.returncode, r.stdout, r.stderr


PYTHON_ENV = [PYTHON, "-c", "import os; print(os.environ.get('PYTHONPATH'))"]


def test_the_library_is_loaded_from_ld_so_preload_and_the_real_etc_is_untouched(etc):
    before = os.path.exists("/etc/ld.so.preload")
    r = etc().run(["sh", "-c", "cat /etc/ld.so.preload; grep -q libtigerops.so /proc/self/maps && echo loaded"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == [LIB, "loaded"]
    assert os.path.exists("/etc/ld.so.preload") == before


def test_off_by_default_python_is_left_alone(etc):
    assert etc().run(PYTHON_ENV).stdout == b"None\n"
    assert etc(ini="[tigerops]\n;system_wide = true\n").run(PYTHON_ENV).stdout == b"None\n"


def test_on_python_is_included_and_the_switches_still_turn_it_off(etc):
    on = etc(ini="[tigerops]\nsystem_wide = true\n")
    assert on.run(PYTHON_ENV).stdout.decode().strip() == PYDIR
    # The environment overrides the file, and the kill switches hold.
    assert on.run(PYTHON_ENV, env=clean_env(TIGEROPS_SYSTEM_WIDE="false")).stdout == b"None\n"
    assert on.run(PYTHON_ENV, env=clean_env(OTEL_SDK_DISABLED="true")).stdout == b"None\n"
    assert etc(ini="system_wide = true\nenabled = false\n").run(PYTHON_ENV).stdout == b"None\n"
    # TIGEROPS_CONFIG names another file, as for the Python side.
    other = os.path.join(on.dir, "other.ini")
    with open(other, "w") as f:
        f.write("[tigerops]\nsystem_wide = true\n")
    off = etc()
    assert off.run(PYTHON_ENV, env=clean_env(TIGEROPS_CONFIG=other)).stdout.decode().strip() == PYDIR


def test_a_process_left_out_drops_what_an_included_parent_set(etc):
    on = etc(ini="[tigerops]\nsystem_wide = true\ninclude_args = *PARENT*\n")
    code = ("import os, subprocess, sys; print(os.environ.get('PYTHONPATH')); sys.stdout.flush(); "
            "subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"PYTHONPATH\"))'])"
            " # PARENT")
    r = on.run([PYTHON, "-c", code])
    assert r.stdout.decode().split("\n") == [PYDIR, "None", ""], r.stderr


# Programs that must not notice the preload: (argv, env extras).
TOOLS = [
    ["bash", "-c", "env | sort"],
    ["apt-get", "--version"],
    ["apt-cache", "policy", "bash"],
    ["dpkg", "-l", "bash"],
    ["perl", "-e", 'print map { "$_=$ENV{$_}\\n" } sort keys %ENV'],
    ["git", "--version"],
    [PYTHON, "-m", "pip", "--version"],
]


@pytest.mark.parametrize("argv", TOOLS, ids=lambda a: " ".join(a)[:40])
def test_tools_behave_byte_for_byte_as_without_the_preload(etc, argv):
    bare = etc(preload=False).run(argv)
    off = etc().run(argv)
    on = etc(ini="[tigerops]\nsystem_wide = true\n").run(argv)
    assert bare.returncode == 0, bare.stderr
    assert outcome(off) == outcome(bare)
    assert outcome(on) == outcome(bare)


def test_setuid_programs_are_never_touched(etc, tmp_path):
    # A setuid-root copy of env run as nobody (AT_SECURE), beside a plain
    # copy: the filter includes both by name, only the plain one is changed.
    bindir = tempfile.mkdtemp(prefix="tigerops-suid-")
    try:
        os.chmod(bindir, 0o755)
        suid, plain = os.path.join(bindir, "env-suid"), os.path.join(bindir, "env-plain")
        shutil.copy("/usr/bin/env", suid)
        shutil.copy("/usr/bin/env", plain)
        os.chmod(suid, 0o4755)
        ini = "[tigerops]\nsystem_wide = true\ninclude_paths = env-*\n"
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        bare = etc(preload=False).run(as_nobody + [suid])
        on = etc(ini=ini)
        r = on.run(as_nobody + [suid])
        assert bare.returncode == 0, bare.stderr
        assert outcome(r) == outcome(bare)
        assert b"PYTHONPATH" not in r.stdout
        # The guard is what spares it: the same program without the bit is included.
        assert ("PYTHONPATH=" + PYDIR).encode() in on.run(as_nobody + [plain]).stdout
    finally:
        shutil.rmtree(bindir, ignore_errors=True)


def _gunicorn(etc_, python, service, port):
    argv = [python, "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:%d" % port, "--graceful-timeout", "10",
            "hello:app"]
    # No agent variable but the service name: the settings come from the ini.
    env = clean_env(TIGEROPS_SERVICE_NAME=service, PYTHONPATH=APPS, OTEL_BSP_SCHEDULE_DELAY="50")
    return Server(etc_.argv(argv), env, port)


def _serve_both(otlp, included, excluded):
    """Runs both apps, one request each, stops them (an agent flushes at
    exit, so whatever the excluded one would export has arrived by then);
    returns the spans and the servers' output."""
    with included as inc, excluded as exc:
        assert inc.get("/hello/in")[0] == 200
        assert exc.get("/hello/out")[0] == 200
        assert exc.stop() == 0
        assert inc.stop() == 0
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 2 and s["resource"]["service.name"] == "included")
        out = inc.output() + exc.output()
    # The Python side reads the same ini: the new keys are known to it.
    assert "unknown" not in out and "did you mean" not in out, out
    return spans


def ini_for(otlp, extra):
    return "[tigerops]\nsystem_wide = true\nendpoint = %s\n%s" % (otlp.endpoint, extra)


def test_an_included_app_is_traced_and_one_excluded_by_argv_is_not(etc, otlp):
    port_out = free_port()
    e = etc(ini=ini_for(otlp, "include_args = *gunicorn*\nexclude_args = *-b 127.0.0.1:%d*\n" % port_out))
    spans = _serve_both(otlp, _gunicorn(e, PYTHON, "included", free_port()),
                        _gunicorn(e, PYTHON, "excluded", port_out))
    assert "GET /hello/<name>" in [s["name"] for s in server_spans(spans)]
    assert {s["resource"]["service.name"] for s in otlp.spans()} == {"included"}


@pytest.mark.skipif(not DEBIAN_PYTHON, reason="excludes Debian's /usr/bin/python3 by path and runs a copy of "
                    "it with Debian's gunicorn: not the matrix venv's interpreter")
def test_an_app_excluded_by_executable_path_is_not_traced(etc, otlp, tmp_path):
    # A venv with a copied interpreter is another executable path that runs
    # the same Flask and gunicorn.
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--copies", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    e = etc(ini=ini_for(otlp, "exclude_paths = /usr/bin/python3*\n"))
    spans = _serve_both(otlp, _gunicorn(e, str(venv / "bin" / "python3"), "included", free_port()),
                        _gunicorn(e, PYTHON, "excluded", free_port()))
    assert "GET /hello/<name>" in [s["name"] for s in server_spans(spans)]
    assert {s["resource"]["service.name"] for s in otlp.spans()} == {"included"}
