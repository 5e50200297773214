"""Real backing servers for the tests, started on 127.0.0.1 with free ports
and stopped afterwards."""
import glob
import os
import shutil
import subprocess
import tempfile
import time

from agent import free_port


def _pg_bin(tool):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/" + tool))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return found[-1]


class Postgres:
    """A throwaway cluster: initdb + pg_ctl as the postgres user (PostgreSQL
    refuses to run as root), trust auth on loopback only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tigerops-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_pg:
            shutil.chown(self.dir, "postgres", "postgres")
        self.as_pg = as_pg
        subprocess.run(as_pg + [_pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)
        opts = "-p %d -k %s -h 127.0.0.1 -c fsync=off -c log_statement=all" % (self.port, self.dir)
        subprocess.run(as_pg + [_pg_bin("pg_ctl"), "-D", self.data, "-o", opts, "-l",
                                os.path.join(self.dir, "log"), "-w", "start"], check=True, capture_output=True)
        self.url = "postgresql+psycopg2://postgres:pg-secret-password@127.0.0.1:%d/postgres" % self.port
        self.log = os.path.join(self.dir, "log")

    def stop(self):
        subprocess.run(self.as_pg + [_pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
