"""OTLP/HTTP to an http:// endpoint goes over the agent's own HTTP/1.1
client, not libcurl (which costs a worker about 4.9 MB of RSS): what it must
get right against collectors that answer in other ways than the test
receiver (Content-Length, kept alive). Each collector here is a raw socket
server that counts connections and requests and answers as told."""
import socket
import subprocess
import threading

from agent import PYTHON, agent_env

CODE = ("import hello, tigerops; c = hello.app.test_client()\n"
        "for i in range(3):\n    c.get('/hello/c%d' % i); tigerops.flush(5000)\n"
        "import os; print(open('/proc/self/maps').read().count('libcurl'))")


class RawCollector:
    """Answers every POST with the bytes answer(n) gives for the n-th one
    (0-based); closes the connection after it when close_after."""

    def __init__(self, answer, close_after=False):
        self.answer, self.close_after = answer, close_after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.endpoint = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = 0
        self.posts = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")][0])
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                with self.lock:
                    n = len(self.posts)
                    self.posts.append((head.split(b"\r\n")[0], body))
                conn.sendall(self.answer(n))
                if self.close_after:
                    return

    def close(self):
        self.sock.close()


def run_agent(collector):
    # Spans only: these collectors count trace POSTs on one connection.
    env = agent_env(None, TIGEROPS_ENDPOINT=collector.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="3000",
                    OTEL_METRICS_EXPORTER="none")
    r = subprocess.run([PYTHON, "-c", CODE], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def test_a_chunked_answer_on_a_kept_alive_connection_is_read_to_its_end_and_the_connection_reused():
    ok = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"2\r\n\x0a\x00\r\n0\r\n\r\n")
    c = RawCollector(lambda n: ok)
    try:
        r = run_agent(c)
        assert [p[0] for p in c.posts] == [b"POST /v1/traces HTTP/1.1"] * 3, (c.posts, r.stderr)
        assert all(p[1] for p in c.posts), "every request carries its spans"
        assert c.connections == 1, "one kept-alive connection, %d made" % c.connections
        assert r.stdout.strip() == "0", "libcurl was loaded for an http:// endpoint"
    finally:
        c.close()


def test_a_collector_closing_kept_alive_connections_gets_each_batch_once_on_a_new_one():
    # HTTP/1.1 without "Connection: close", then the close: the agent finds out
    # only at its next request, which it sends again on a new connection.
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    c = RawCollector(lambda n: ok, close_after=True)
    try:
        r = run_agent(c)
        assert len(c.posts) == 3, (c.posts, r.stderr)
        assert c.connections == 3
    finally:
        c.close()


def test_retry_after_of_a_503_is_honoured_and_the_batch_sent_again():
    answers = [b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy",
               b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    c = RawCollector(lambda n: answers[min(n, 1)])
    try:
        r = run_agent(c)
        assert len(c.posts) == 4, (len(c.posts), r.stderr)
        assert c.posts[0][1] == c.posts[1][1], "the refused batch is sent again as it was"
        assert c.connections == 1
    finally:
        c.close()
