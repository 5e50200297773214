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


class RedisServer:
    """redis-server on 127.0.0.1, no persistence."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = "redis://127.0.0.1:%d/0" % self.port
        _wait_port(self.port, self.proc, "redis-server")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Memcached:
    """memcached on 127.0.0.1."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
                                      "-u", "nobody"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "memcached")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def _wait_port(port, proc, what, timeout=15):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s not listening on %d" % (what, port))


class MariaDB:
    """A throwaway MariaDB: mariadb-install-db into a temp dir, then mariadbd
    on a free loopback port (no networking beyond 127.0.0.1, no grant
    tables to speak of: root over TCP without a password) with a database
    named "app"."""

    def __init__(self):
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/bin") \
            or shutil.which("mysqld", path="/usr/sbin:/usr/bin")
        if not install or not server:
            raise RuntimeError("MariaDB server binaries not found (apt-get install mariadb-server)")
        self.dir = tempfile.mkdtemp(prefix="tigerops-mariadb-")
        self.data = os.path.join(self.dir, "data")
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([install, "--no-defaults", "--datadir=" + self.data, "--auth-root-authentication-method=normal",
                        "--skip-test-db"] + user, check=True, capture_output=True)
        self.port = free_port()
        self.log = os.path.join(self.dir, "log")
        self.proc = subprocess.Popen(
            [server, "--no-defaults", "--datadir=" + self.data, "--port=%d" % self.port,
             "--bind-address=127.0.0.1", "--socket=" + os.path.join(self.dir, "sock"),
             "--pid-file=" + os.path.join(self.dir, "pid"), "--log-error=" + self.log,
             "--skip-grant-tables", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             "--general-log=1", "--general-log-file=" + os.path.join(self.dir, "general.log")] + user,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_port(self.port, self.proc, "mariadbd", timeout=60)
            self._create_database()
        except Exception:
            self.stop()
            raise

    def _create_database(self):
        import pymysql
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS app")
        conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class RabbitMQ:
    """Debian's rabbitmq-server as a node of its own: its own node name
    (tgo-<pid>-<port>@localhost), data, log and cookie (HOME) in a temp dir,
    AMQP, Erlang distribution and its own epmd on free loopback ports, no
    plugins. Nothing it does touches the packaged service (/var/lib/rabbitmq,
    epmd on 4369, node rabbit@host), whether or not that one runs.

    Booting takes 5-15 s: with wait=False it boots while the caller does
    other work, and wait_ready() waits for it."""

    def __init__(self, wait=True, timeout=90):
        server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not os.path.exists(server) or not shutil.which("epmd"):
            raise RuntimeError("rabbitmq-server not found (apt-get install rabbitmq-server)")
        self.dir = tempfile.mkdtemp(prefix="tigerops-rabbitmq-")
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node = "tgo-%d-%d@localhost" % (os.getpid(), self.port)
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[].\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        self.env.update(
            HOME=self.dir, ERL_EPMD_PORT=str(self.epmd_port), ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"), RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=plugins, RABBITMQ_PLUGINS_EXPAND_DIR=os.path.join(self.dir, "plugins"),
            RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.dir, "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=os.path.join(self.dir, "pid"))
        self.log = os.path.join(self.dir, "server.log")
        self.url = "amqp://guest:guest@127.0.0.1:%d//" % self.port
        self.epmd = self.proc = None
        self.ready = False
        try:
            # Our own epmd in the foreground: erl finds it instead of starting
            # a daemon that would outlive the test.
            self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                         env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_port(self.epmd_port, self.epmd, "epmd")
            with open(self.log, "wb") as log:
                # The script waits on the node and stops it cleanly on SIGTERM.
                self.proc = subprocess.Popen([server], env=self.env, cwd=self.dir, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            if wait:
                self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise

    def wait_ready(self, timeout=90):
        """Polls until the broker answers an AMQP 0-9-1 protocol header with
        connection.start (a method frame): the listener opens only once the
        node has booted."""
        import socket
        deadline = time.monotonic() + timeout
        while not self.ready:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"AMQP\x00\x00\x09\x01")
                    if s.recv(1) == b"\x01":
                        self.ready = True
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("rabbitmq-server not ready after %ss:\n%s" % (timeout, self.output()))
            time.sleep(0.2)

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self):
        for proc in (self.proc, self.epmd):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                if proc is self.proc:
                    os.killpg(proc.pid, 9)
                else:
                    proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
