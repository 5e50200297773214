"""The .deb, installed with apt into a clean Debian 12 root (debootstrap,
cached), used the two documented ways, then removed and purged."""
import os
import re
import shutil
import subprocess

import pytest

from agent import Server, free_port
from chroot import DebianRoot
from conftest import HERE, request_span, version

LIBDIR = "/usr/lib/x86_64-linux-gnu"
LIB = LIBDIR + "/libtigerops.so"


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_control_fields_version_and_declared_dependencies(deb):
    assert deb_field(deb, "Package") == "tigerops"
    assert deb_field(deb, "Version").split("-")[0] == version()
    assert deb_field(deb, "Architecture") == "amd64"
    depends = [d.strip().split(" ")[0] for d in deb_field(deb, "Depends").split(",")]
    # dlopen'ed, so invisible to dpkg-shlibdeps: must be declared by hand.
    assert "libcurl4" in depends
    for lib in ("libc6", "libinih1", "zlib1g"):
        assert lib in depends, depends
    assert "libprotobuf-c1" not in depends, "OTLP is written by our own encoder"


def test_lintian_reports_no_errors_and_no_unexplained_warnings(deb):
    r = subprocess.run(["lintian", "--fail-on", "error", deb], capture_output=True, text=True)
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EW]: ", l)]
    assert r.returncode == 0 and not tags, r.stdout + r.stderr


def test_layout_conffile_man_page_copyright(deb):
    listing = subprocess.run(["dpkg-deb", "-c", deb], check=True, capture_output=True, text=True).stdout
    paths = {l.split()[-1].lstrip(".") for l in listing.splitlines()}
    for p in (LIB, LIBDIR + "/libtigerops-core.so", "/usr/bin/tigerops-run", "/etc/tigerops/tigerops.ini",
              LIBDIR + "/tigerops/python/sitecustomize.py", LIBDIR + "/tigerops/python/_tigerops.abi3.so",
              LIBDIR + "/tigerops/python/tigerops/__init__.py",
              LIBDIR + "/tigerops/python/tigerops/contrib/flask.py",
              "/usr/share/man/man1/tigerops-run.1.gz", "/usr/share/doc/tigerops/copyright",
              "/usr/share/doc/tigerops/changelog.Debian.gz"):
        assert p in paths, p
    assert not [p for p in paths if "__pycache__" in p or p.endswith((".pyc", ".la"))]
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], check=True, capture_output=True).stdout
    conffiles = subprocess.run(["tar", "-xO", "./conffiles"], input=control, check=True,
                               capture_output=True).stdout.decode()
    assert conffiles.split() == ["/etc/tigerops/tigerops.ini"]


@pytest.fixture(scope="module")
def debian(debian_tarball, tmp_path_factory):
    from conftest import BUILD
    os.makedirs(os.path.join(BUILD, "packaging-tests"), exist_ok=True)
    path = os.path.join(BUILD, "packaging-tests", "debian-deb")
    shutil.rmtree(path, ignore_errors=True)
    root = DebianRoot(debian_tarball, path)
    yield root
    shutil.rmtree(path, ignore_errors=True)


def install_app(root):
    os.makedirs(root.file("/srv/app"), exist_ok=True)
    shutil.copy(os.path.join(HERE, "apps", "app.py"), root.file("/srv/app/app.py"))


def gunicorn_in_root(root, prefix, otlp, **env):
    port = free_port()
    argv = root.argv(*prefix, "gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "app:app")
    return Server(argv, root.env(TIGEROPS_ENDPOINT=otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY=50, **env), port)


def test_install_run_remove_purge(deb, debian, otlp):
    root = debian
    install_app(root)
    before = root.files()
    shutil.copy(deb, root.file("/tmp/tigerops.deb"))
    root.run("apt-get", "update", "-qq")
    runtime = ("libcurl4", "libinih1")
    assert root.run("dpkg", "-s", *runtime, check=False).returncode != 0, "the clean root has them already"
    # apt resolves Depends from Debian: libcurl4 (dlopen'ed, so only there
    # because it is declared) and the linked libraries come in here.
    root.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "/tmp/tigerops.deb")
    root.run("dpkg", "-s", *runtime)
    ours = [p for p in root.run("dpkg", "-L", "tigerops").stdout.splitlines() if p not in ("/.",)]
    assert LIB in ours and "/usr/bin/tigerops-run" in ours
    assert root.run("tigerops-run", "--version").stdout.strip() == "tigerops-run " + version()
    assert root.run("dpkg-query", "-W", "-f=${Conffiles}", "tigerops").stdout.split()[0] == \
        "/etc/tigerops/tigerops.ini"

    # 1. the wrapper, found on PATH, finding the library in the multiarch dir
    with gunicorn_in_root(root, ["tigerops-run", "--service", "deb-run"], otlp) as server:
        assert server.get("/hello/deb")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>")
    span = request_span(spans, "/hello/deb")
    assert span["resource"]["telemetry.sdk.version"] == version()
    otlp.reset()

    # 2. plain LD_PRELOAD of the installed path, settings from the conffile
    with open(root.file("/etc/tigerops/tigerops.ini"), "a") as f:
        f.write("\nservice_name = from-etc-ini\n")
    with gunicorn_in_root(root, ["env", "LD_PRELOAD=" + LIB], otlp) as server:
        assert server.get("/hello/preload")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>")
    span = request_span(spans, "/hello/preload")
    assert span["resource"]["service.name"] == "from-etc-ini"

    # remove: everything but the (modified) conffile goes, caches included
    # (the postinst compiled some; none of them is in the package's file list)
    assert os.path.isdir(root.file(LIBDIR + "/tigerops/python/tigerops/__pycache__"))
    root.run("apt-get", "remove", "-y", "-qq", "tigerops")
    left = [p for p in ours if os.path.lexists(root.file(p)) and not os.path.isdir(root.file(p))]
    assert left == ["/etc/tigerops/tigerops.ini"]
    assert not os.path.exists(root.file(LIBDIR + "/tigerops")), "caches left in our python dir"
    assert root.run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "tigerops").stdout.strip() == "rc"

    # purge: nothing of ours at all; whatever else is new belongs to the
    # dependencies apt installed, or is apt's and dpkg's own bookkeeping
    root.run("apt-get", "purge", "-y", "-qq", "tigerops")
    after = root.files()
    assert not [p for p in after if "tigerops" in p.lower() and not p.startswith("/srv/app")]
    new = sorted(p for p in after - before if not p.startswith(("/var/lib/dpkg/", "/var/log/",
                                                                "/var/cache/", "/var/lib/apt/",
                                                                "/srv/app/")))
    files = [p for p in new if not os.path.isdir(root.file(p)) or os.path.islink(root.file(p))]
    owned = set()
    if files:
        for line in root.run("dpkg", "-S", *files, check=False).stdout.splitlines():
            owned.update(p.strip() for p in line.split(": ", 1)[1].split(","))
    assert not [p for p in files if p not in owned], [p for p in files if p not in owned]
