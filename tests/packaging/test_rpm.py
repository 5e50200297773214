"""The .rpm: its metadata checked with rpm, its payload unpacked with
rpm2cpio | cpio and run from that tree. Installing it on an RPM
distribution is not tested here (no such system on these machines)."""
import os
import re
import subprocess

from agent import Server, free_port
from conftest import HERE, request_span, version

LIBDIR = "/usr/lib64"


def rpmq(rpm, *args):
    return subprocess.run(["rpm", "-qp", *args, rpm], check=True, capture_output=True, text=True).stdout


def test_name_version_arch(rpm):
    assert rpmq(rpm, "--qf", "%{NAME} %{VERSION} %{ARCH}") == "tigerops %s x86_64" % version()


def test_file_list_same_layout_and_noreplace_config(rpm):
    files = set(rpmq(rpm, "-l").split())
    for p in (LIBDIR + "/libtigerops.so", LIBDIR + "/libtigerops-core.so", LIBDIR + "/tigerops/python/sitecustomize.py",
              LIBDIR + "/tigerops/python/_tigerops.abi3.so", LIBDIR + "/tigerops/python/tigerops/__init__.py",
              LIBDIR + "/tigerops/python/tigerops/contrib/flask.py", "/usr/bin/tigerops-run",
              "/etc/tigerops/tigerops.ini", "/usr/share/man/man1/tigerops-run.1",
              "/usr/share/licenses/tigerops-%s/LICENSE" % version()):
        assert p in files, p
    assert not [p for p in files if "__pycache__" in p or p.endswith((".pyc", ".la"))]
    # The C API goes to tigerops-devel, as RPM distributions split it.
    assert not [p for p in files if p.endswith((".h", ".pc"))]
    flags = dict(l.split() for l in rpmq(rpm, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]").splitlines()
                 if len(l.split()) == 2)
    assert flags["/etc/tigerops/tigerops.ini"] == "cn"  # %config(noreplace)
    assert rpmq(rpm, "-c").split() == ["/etc/tigerops/tigerops.ini"]


def test_requires_declare_the_dlopened_libcurl_and_linked_libraries(rpm):
    requires = rpmq(rpm, "-R").split("\n")
    for soname in ("libcurl.so.4()(64bit)", "libinih.so.1()(64bit)",
                   "libz.so.1()(64bit)", "libc.so.6()(64bit)"):
        assert soname in requires, requires
    assert "/usr/bin/pkg-config" not in requires  # the .pc file is in -devel
    assert "libtigerops.so()(64bit)" in rpmq(rpm, "--provides").split("\n")


def test_scriptlets(rpm):
    scripts = rpmq(rpm, "--scripts")
    post = scripts.split("postinstall scriptlet")[1].split("preuninstall")[0]
    assert "/sbin/ldconfig" in post and "compileall -q /usr/lib64/tigerops/python" in post
    preun = scripts.split("preuninstall scriptlet")[1].split("postuninstall")[0]
    assert '"$1" -eq 0' in preun and "__pycache__" in preun and "/usr/lib64/tigerops/python" in preun
    assert "postuninstall program: /sbin/ldconfig" in scripts


def test_unpacked_tree_runs_an_app(rpm, scratch, otlp):
    tree = os.path.join(scratch, "tree")
    os.makedirs(tree)
    subprocess.run("rpm2cpio %s | cpio -idm --quiet" % rpm, shell=True, cwd=tree, check=True)
    lib = tree + LIBDIR + "/libtigerops.so"
    # What the preload maps into every process needs libc alone.
    dyn = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
    assert re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", dyn) == ["libc.so.6"], dyn
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "LD_PRELOAD": lib, "TIGEROPS_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50",
           "TIGEROPS_SERVICE_NAME": "rpm-tree"}
    # The library found its Python side beside itself, in the tree.
    where = subprocess.run(["/usr/bin/python3", "-c", "import tigerops, _tigerops; print(tigerops.__file__); "
                            "print(_tigerops.__file__); print(tigerops.__version__)"],
                           env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where == [tree + LIBDIR + "/tigerops/python/tigerops/__init__.py",
                     tree + LIBDIR + "/tigerops/python/_tigerops.abi3.so", version()]
    port = free_port()
    argv = ["/usr/bin/python3", "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "app:app"]
    with Server(argv, env, port, cwd=os.path.join(HERE, "apps")) as server:
        assert server.get("/hello/rpm")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/hello/rpm")
    span = request_span(spans, "/hello/rpm")
    assert span["name"] == "GET /hello/<name>" and span["resource"]["service.name"] == "rpm-tree"
