"""Small helpers for the integration tests (stdlib only)."""
import socket
import threading
import time
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=15, interval=0.05):
    """Poll url with GET until it answers at all (any HTTP status counts,
    4xx/5xx too) and return that status; AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            with urllib.request.urlopen(url, timeout=max(0.1, min(2.0, deadline - time.monotonic()))) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            e.close()
            return e.code
        except OSError as e:  # refused, reset, timed out: not up yet
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("no HTTP answer from %s within %ss (last error: %r)" % (url, timeout, last))
        time.sleep(interval)


def wait_until(predicate, what, timeout=15, interval=0.02):
    """Poll predicate() until true; AssertionError naming what after timeout s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError("waited %ss for %s" % (timeout, what))
        time.sleep(interval)


class HangingCollector:
    """Accepts TCP connections and reads what is sent, never answering: a
    collector that hangs (for OTLP/HTTP and gRPC alike)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.endpoint = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.received = b""
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.received += data

    def started(self, marker):
        """How many calls began: occurrences of marker (b"POST /v1/traces",
        or the HTTP/2 preface b"PRI * HTTP/2.0") in what was read."""
        with self.lock:
            return self.received.count(marker)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()
