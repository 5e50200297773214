"""A real OpenTelemetry Collector for the tests: otelcol-tgo, built from the
Go module proxy by tests/collector/build.sh (tests/run-all.sh runs it).

Collector(...) writes a config (ports free on 127.0.0.1, a file exporter
writing OTLP JSON lines under a temp dir), starts the collector and polls
its health_check extension until the pipelines run. spans() reads what the
file exporter wrote, flattened to the shape the test receiver's /spans has
(otlp.py), so the two can be compared span by span.

agent_refuses(protocol, tls) probes, at run time, whether the agent under
test accepts an OTLP protocol (and a custom CA, and a client certificate,
for TLS): tests for a transport the agent does not speak yet skip with the
agent's own words.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from agent import LIB, PYTHON, ROOT, clean_env
from util import free_port

COLLECTOR = os.environ.get("TIGEROPS_TEST_COLLECTOR") or os.path.join(ROOT, "build", "collector", "otelcol-tgo")
BUILD_HINT = "bash tests/collector/build.sh (tests/run-all.sh runs it before the integration tests)"
PROTOCOLS = ("http/protobuf", "grpc", "http/json")
_MAX_SAFE = (1 << 53) - 1


def missing():
    """Why the collector cannot run here, or None."""
    if not os.access(COLLECTOR, os.X_OK):
        return "no collector binary at %s: build it with %s" % (COLLECTOR, BUILD_HINT)
    return None


# ---- what the agent accepts -------------------------------------------------

_probes = {}


def agent_refuses(protocol, tls=None):
    """None when the agent under test exports with protocol (and, with tls
    "tls", takes a custom CA file; with "mtls", a client certificate and key
    too); else the agent's own warning, as the reason a test skips. Asked
    of the agent itself: a process under LD_PRELOAD logs one warning per
    setting it does not accept and a start-up line naming the protocol it
    uses."""
    key = (protocol, tls)
    if key not in _probes:
        _probes[key] = _probe(protocol, tls)
    return _probes[key]


def _probe(protocol, tls):
    tmp = tempfile.mkdtemp(prefix="tigerops-probe-")
    try:
        env = clean_env(LD_PRELOAD=LIB, TIGEROPS_LOG_LEVEL="info", OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % free_port())
        watched = ["OTEL_EXPORTER_OTLP_PROTOCOL"]
        if tls:
            certs = make_tls(tmp)
            env.update(tls_env(certs, tls))
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://127.0.0.1:%d" % free_port()
            watched.extend(k for k in tls_env(certs, tls))
        out = subprocess.run([PYTHON, "-c", "pass"], env=env, capture_output=True, timeout=30,
                             stdin=subprocess.DEVNULL).stderr.decode("utf-8", "replace")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = out.splitlines()
    warned = [line for line in lines if ": warning: " in line and any(w in line for w in watched)]
    if warned:
        return "the agent does not accept it yet: " + " / ".join(warned)
    started = [line for line in lines if ": info: tracer " in line]
    if not started:
        return "the agent printed no start-up line (probe output: %r)" % out[-500:]
    if " protocol=%s" % protocol not in started[0]:
        return "the agent exports with another protocol: " + started[0]
    return None


# ---- TLS material -----------------------------------------------------------

def make_tls(directory):
    """A throwaway CA, a server certificate for 127.0.0.1 and a client
    certificate, both signed by it, with openssl: {"ca", "cert", "key",
    "client_cert", "client_key"} file paths."""
    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tigerops test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
                     ("client", "extendedKeyUsage=clientAuth\n")):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tigerops test %s" % who,
            "-keyout", who + ".key", "-out", who + ".csr")
        with open(os.path.join(directory, who + ".cnf"), "w") as f:
            f.write(ext)
        ssl("x509", "-req", "-in", who + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", who + ".cnf", "-out", who + ".pem")
    return {k: os.path.join(directory, v) for k, v in (
        ("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"),
        ("client_cert", "client.pem"), ("client_key", "client.key"))}


def tls_env(certs, tls):
    """The agent's settings for a collector with certs ("tls": trust its
    CA; "mtls": and present the client certificate)."""
    env = {"OTEL_EXPORTER_OTLP_CERTIFICATE": certs["ca"]}
    if tls == "mtls":
        env.update(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=certs["client_cert"],
                   OTEL_EXPORTER_OTLP_CLIENT_KEY=certs["client_key"])
    return env


# ---- the collector ----------------------------------------------------------

class Collector:
    """otelcol-tgo on 127.0.0.1: OTLP receiver (gRPC and HTTP) ->
    processors -> exporters. By default the processors are a fast batch and
    the exporter is a file exporter whose JSON lines spans() reads; exporters
    (a dict of name -> config) adds exporters, and file=False leaves the file
    exporter out (a tier that only forwards). processors replaces the
    processor list: a list of (name, config). tls={"cert","key"} (make_tls)
    makes both OTLP endpoints TLS; with client_auth=True they also require a
    client certificate signed by tls["ca"]. The ports stay the same across
    stop()/start(), as for a collector restarted in place.

    base: a config as users write it (docs/collector.md); the collector
    merges this class's config over it (a second --config), which then
    only moves its endpoints to free loopback ports, adds the file exporter
    as the traces pipeline's exporter (with file=True) and merges
    exporters into the base's exporters (processors are the base's).
    protocols: the OTLP receiver protocols the base enables."""

    def __init__(self, name="collector", exporters=None, processors=None, file=True, tls=None, start=True,
                 base=None, protocols=("grpc", "http"), client_auth=False):
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="tigerops-%s-" % name)
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.health_port = free_port()
        self.out = os.path.join(self.dir, "spans.jsonl")
        self.log_path = os.path.join(self.dir, "collector.log")
        self.tls = tls
        self.client_auth = client_auth
        self.exporters = dict(exporters or {})
        if file:
            # append: a restart must not truncate what arrived before it
            self.exporters["file"] = {"path": self.out, "format": "json", "flush_interval": "50ms",
                                      "append": True}
        self.processors = processors if processors is not None else [("batch", {"timeout": "100ms"})]
        self.base = base
        self.protocols = protocols
        self.file = file
        self.proc = None
        self._log = None
        self.write_config()
        if start:
            self.start()

    # endpoints as an OTLP exporter names them
    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def http_endpoint(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.http_port)

    @property
    def grpc_endpoint(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.grpc_port)

    def endpoint_for(self, protocol):
        """OTEL_EXPORTER_OTLP_ENDPOINT for an agent exporting with protocol."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def config(self):
        tls = {"tls": {"cert_file": self.tls["cert"], "key_file": self.tls["key"]}} if self.tls else {}
        if self.client_auth:
            tls["tls"]["client_ca_file"] = self.tls["ca"]
        ports = {"grpc": self.grpc_port, "http": self.http_port}
        config = {
            "extensions": {"health_check": {"endpoint": "127.0.0.1:%d" % self.health_port}},
            "receivers": {"otlp": {"protocols": {
                p: dict({"endpoint": "127.0.0.1:%d" % ports[p]}, **tls) for p in self.protocols}}},
            "exporters": self.exporters,
            # no :8888 metrics listener: several collectors run at once
            "service": {"telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}}},
        }
        if self.base:
            if self.file:
                config["service"]["pipelines"] = {"traces": {"exporters": sorted(self.exporters)}}
            return config
        config["processors"] = {name: cfg for name, cfg in self.processors}
        config["service"].update({
            "extensions": ["health_check"],
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": [n for n, _ in self.processors],
                                     "exporters": sorted(self.exporters)}},
        })
        return config

    def write_config(self):
        self.config_path = os.path.join(self.dir, "config.yaml")
        with open(self.config_path, "w") as f:
            json.dump(self.config(), f, indent=1)  # JSON is YAML

    def argv(self):
        configs = ([self.base] if self.base else []) + [self.config_path]
        return [COLLECTOR] + [a for c in configs for a in ("--config", c)]

    def start(self, timeout=30):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout=30):
        """Polls the health_check extension: 200 once every pipeline runs."""
        url = "http://127.0.0.1:%d/" % self.health_port
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, self.output()))
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("%s not healthy after %ss:\n%s" % (self.name, timeout, self.output()))
            time.sleep(0.05)

    def stop(self, timeout=20):
        """SIGTERM: the collector drains its pipelines (batch, file flush)
        before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def output(self, tail=6000):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- what arrived ----

    def requests(self):
        """Every ExportTraceServiceRequest the file exporter wrote, as the
        OTLP JSON objects (one line each; a line still being written is left
        for the next call)."""
        try:
            with open(self.out, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def spans(self):
        out = []
        for req in self.requests():
            out.extend(flatten_traces(req))
        return out

    def wait_for_spans(self, predicate=None, count=1, timeout=30):
        """All spans that arrived, once at least count match predicate;
        AssertionError naming what did arrive (and the collector's log)
        after timeout s."""
        predicate = predicate or (lambda s: True)
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            matching = [s for s in spans if predicate(s)]
            if len(matching) >= count:
                return spans
            if time.monotonic() > deadline:
                raise AssertionError("%s: waited %ss for %d spans, got %d matching of %d: %s\n--- log:\n%s"
                                     % (self.name, timeout, count, len(matching), len(spans),
                                        [s["name"] for s in spans][:50], self.output(3000)))
            time.sleep(0.05)


def docs_config(name, directory):
    """The YAML block of docs/collector.md whose first line is "# name",
    written to directory/name: the tests run the configs users read."""
    with open(os.path.join(ROOT, "docs", "collector.md")) as f:
        text = f.read()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    found = [b for b in blocks if b.startswith("# %s" % name)]
    assert len(found) == 1, "docs/collector.md has %d yaml blocks starting with '# %s'" % (len(found), name)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(found[0])
    return path


# ---- OTLP JSON -> the receiver's flattened span -----------------------------

def _int(v):
    n = int(v)  # OTLP JSON writes int64 as a string
    return n if -_MAX_SAFE <= n <= _MAX_SAFE else str(n)  # as the receiver (otlp-receiver.js longValue)


def _any(v):
    if not v:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return _int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        return [_any(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return _attrs(v["kvlistValue"].get("values"))
    if "bytesValue" in v:
        return base64.b64decode(v["bytesValue"]).hex()
    return None


def _attrs(kvs):
    return {kv["key"]: _any(kv.get("value")) for kv in kvs or []}


def flatten_traces(req):
    """One OTLP JSON ExportTraceServiceRequest as the test receiver's /spans
    entries (same keys, same value types), plus flags, which the receiver's
    protos predate."""
    out = []
    for rs in req.get("resourceSpans", []):
        resource = _attrs((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            scope = ss.get("scope") or {}
            scope = {"name": scope.get("name", ""), "version": scope.get("version", "")}
            for s in ss.get("spans", []):
                status = s.get("status") or {}
                out.append({
                    "traceId": s.get("traceId", ""),
                    "spanId": s.get("spanId", ""),
                    "parentSpanId": s.get("parentSpanId", ""),
                    "name": s.get("name", ""),
                    "kind": s.get("kind", 0),
                    "startTimeUnixNano": str(s.get("startTimeUnixNano", "0")),
                    "endTimeUnixNano": str(s.get("endTimeUnixNano", "0")),
                    "attributes": _attrs(s.get("attributes")),
                    "droppedAttributesCount": s.get("droppedAttributesCount", 0),
                    "events": [{"name": e.get("name", ""), "timeUnixNano": str(e.get("timeUnixNano", "0")),
                                "attributes": _attrs(e.get("attributes"))} for e in s.get("events", [])],
                    "droppedEventsCount": s.get("droppedEventsCount", 0),
                    "links": [{"traceId": ln.get("traceId", ""), "spanId": ln.get("spanId", ""),
                               "traceState": ln.get("traceState", ""),
                               "attributes": _attrs(ln.get("attributes")),
                               "droppedAttributesCount": ln.get("droppedAttributesCount", 0)}
                              for ln in s.get("links", [])],
                    "droppedLinksCount": s.get("droppedLinksCount", 0),
                    "status": {"code": status.get("code", 0), "message": status.get("message", "")},
                    "traceState": s.get("traceState", ""),
                    "flags": s.get("flags", 0),
                    "resource": resource,
                    "scope": scope,
                })
    return out
