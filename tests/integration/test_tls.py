"""TLS for both transports with a throwaway CA (openssl, in the test): the
collector's certificate checked against OTEL_EXPORTER_OTLP_CERTIFICATE (the
system bundle when unset), a client certificate for mTLS, one clear log line
naming the setting and the endpoint when the files are wrong (never a hang,
never a retry loop), and HTTPS_PROXY / NO_PROXY honoured."""
import select
import socket
import subprocess
import threading
import time

import pytest

from agent import PYTHON, agent_env
from grpc_receiver import GrpcReceiver, Pki

CODE = ("import hello, tigerops; c = hello.app.test_client()\n"
        "for i in range(3):\n    c.get('/hello/t%d' % i); tigerops.flush(15000)\n")


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    yield p
    p.cleanup()


@pytest.fixture
def tls_receiver(pki):
    with GrpcReceiver(tls=pki) as r:
        yield r


@pytest.fixture
def mtls_receiver(pki):
    with GrpcReceiver(tls=pki, require_client_cert=True) as r:
        yield r


def endpoint_of(receiver, protocol):
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.https_endpoint


def run(receiver, protocol, **extra):
    env = agent_env(None, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                    OTEL_EXPORTER_OTLP_ENDPOINT=endpoint_of(receiver, protocol), **extra)
    t0 = time.monotonic()
    r = subprocess.run([PYTHON, "-c", CODE], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r, time.monotonic() - t0


PROTOCOLS = ["grpc", "http/protobuf"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_collector_certificate_is_checked_against_the_configured_ca(tls_receiver, pki, protocol):
    r, _ = run(tls_receiver, protocol, OTEL_EXPORTER_OTLP_CERTIFICATE=pki.ca)
    spans = tls_receiver.wait_for_spans(count=3)
    assert len(spans) == 3 and r.stderr == ""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_untrusted_collector_gives_one_line_naming_the_setting_and_no_retry(tls_receiver, protocol):
    # No CERTIFICATE: the system bundle, which does not know our test CA.
    r, took = run(tls_receiver, protocol, TIGEROPS_LOG_LEVEL="debug")
    lines = [l for l in r.stderr.splitlines() if "not trusted" in l]
    assert len(lines) == 1, r.stderr
    assert "OTEL_EXPORTER_OTLP_CERTIFICATE" in lines[0] and "the system CA bundle" in lines[0]
    assert endpoint_of(tls_receiver, protocol) in lines[0]
    assert "retrying" not in r.stderr, "the same files fail the same way: no retry"
    assert took < 10 and tls_receiver.requests() == []


@pytest.mark.parametrize("setting,hint", [("OTEL_EXPORTER_OTLP_CERTIFICATE", "CA file"),
                                          ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "client certificate")])
def test_an_unusable_file_is_named_with_its_path(tls_receiver, pki, tmp_path, setting, hint):
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("this is not PEM\n")
    extra = {"OTEL_EXPORTER_OTLP_CERTIFICATE": pki.ca, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.client_key}
    extra[setting] = str(bad)
    r, took = run(tls_receiver, "grpc", **extra)
    lines = [l for l in r.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1, r.stderr
    assert hint in lines[0] and str(bad) in lines[0] and setting.replace("TRACES_", "") in lines[0]
    assert tls_receiver.grpc_endpoint in lines[0]
    assert took < 10


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mtls_with_the_client_certificate_delivers(mtls_receiver, pki, protocol):
    run(mtls_receiver, protocol, OTEL_EXPORTER_OTLP_CERTIFICATE=pki.ca,
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=pki.client_cert, OTEL_EXPORTER_OTLP_CLIENT_KEY=pki.client_key)
    assert len(mtls_receiver.wait_for_spans(count=3)) == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mtls_without_a_client_certificate_is_refused_with_a_hint(mtls_receiver, pki, protocol):
    r, took = run(mtls_receiver, protocol, OTEL_EXPORTER_OTLP_CERTIFICATE=pki.ca, TIGEROPS_LOG_LEVEL="debug")
    lines = [l for l in r.stderr.splitlines() if "spans dropped" in l]
    assert len(lines) == 1, r.stderr
    assert "refused the connection" in lines[0] and "certificate required" in lines[0], lines[0]
    assert "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE" in lines[0] and endpoint_of(mtls_receiver, protocol) in lines[0]
    # (the server may close the connection before the alert is read: that
    # first failure looks like any lost connection and is retried)
    assert not [l for l in r.stderr.splitlines() if "retrying" in l and " alert " in l], \
        "a TLS alert is the server's setting: no retry"
    assert took < 15 and mtls_receiver.spans() == []


class ConnectProxy:
    """A CONNECT-only HTTP proxy on loopback that records the targets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.targets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return conn.close()
            head += chunk
        method, target = head.split(b" ")[:2]
        if method != b"CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return conn.close()
        self.targets.append(target.decode())
        host, port = target.decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        socks = [conn, upstream]
        try:
            while True:
                ready, _, _ = select.select(socks, [], [], 30)
                if not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is conn else conn).sendall(data)
        finally:
            conn.close()
            upstream.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_https_proxy_is_used_and_no_proxy_bypasses_it(tls_receiver, pki, protocol):
    proxy = ConnectProxy()
    try:
        run(tls_receiver, protocol, OTEL_EXPORTER_OTLP_CERTIFICATE=pki.ca, HTTPS_PROXY=proxy.url, NO_PROXY="")
        assert len(tls_receiver.wait_for_spans(count=3)) == 3
        port = tls_receiver.grpc_port if protocol == "grpc" else tls_receiver.https_port
        assert "localhost:%d" % port in proxy.targets
        seen = len(proxy.targets)
        tls_receiver.reset()
        run(tls_receiver, protocol, OTEL_EXPORTER_OTLP_CERTIFICATE=pki.ca, HTTPS_PROXY=proxy.url,
            NO_PROXY="localhost")
        assert len(tls_receiver.wait_for_spans(count=3)) == 3
        assert len(proxy.targets) == seen, "NO_PROXY=localhost goes direct"
    finally:
        proxy.close()


def test_insecure_does_not_turn_tls_off_for_an_https_endpoint(tls_receiver, pki):
    # The OTLP spec: the scheme decides; INSECURE only matters without one.
    r, _ = run(tls_receiver, "grpc", OTEL_EXPORTER_OTLP_CERTIFICATE=pki.ca, OTEL_EXPORTER_OTLP_INSECURE="true")
    assert len(tls_receiver.wait_for_spans(count=3)) == 3
    lines = [l for l in r.stderr.splitlines() if "OTEL_EXPORTER_OTLP_INSECURE" in l]
    assert len(lines) == 1 and "ignored" in lines[0], r.stderr
