"""One version, configure.ac's, in every packaging file that states one
(the built artefacts' versions are checked in test_deb/test_rpm/test_wheel)."""
import os
import re
import subprocess

from conftest import ROOT, version

PACKAGING = os.path.join(ROOT, "packaging")


def test_debian_changelog():
    v = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(PACKAGING, "deb", "debian", "changelog"),
                        "-S", "Version"], check=True, capture_output=True, text=True).stdout.strip()
    assert v.rsplit("-", 1)[0] == version()


def test_rpm_spec():
    with open(os.path.join(PACKAGING, "rpm", "tigerops.spec")) as f:
        spec = f.read()
    assert re.search(r"^Version: +(\S+)$", spec, re.M).group(1) == version()
    assert re.search(r"^\* .* - (\S+)-\d+$", spec, re.M).group(1) == version()


def test_man_page():
    with open(os.path.join(PACKAGING, "tigerops-run.1")) as f:
        th = f.readline()
    assert '"tigerops %s"' % version() in th, th
