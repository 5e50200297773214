"""The OTLP receiver (tests/receiver, node) as a Python object for tests."""
import json
import os
import select
import subprocess
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(os.path.dirname(HERE), "receiver", "otlp-receiver.js")


class OtlpReceiver:
    def __init__(self):
        self.proc = subprocess.Popen(["node", RECEIVER, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("LISTENING"):
                    break
            if self.proc.poll() is not None:
                break
        if not line.startswith("LISTENING"):
            self.stop()
            raise RuntimeError("OTLP receiver did not start (did `npm ci` run in tests/receiver?): %r" % line)
        self.port = int(line.split()[1])
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def _call(self, method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def spans(self):
        return self._call("GET", "/spans")

    def requests(self, bodies=False):
        return self._call("GET", "/requests" + ("?bodies=1" if bodies else ""))

    def reset(self):
        self._call("POST", "/reset", {})

    def set_mode(self, status=None, retry_after=None, delay_ms=0):
        mode = {}
        if status is not None:
            mode["status"] = status
        if retry_after is not None:
            mode["retryAfter"] = str(retry_after)
        if delay_ms:
            mode["delayMs"] = delay_ms
        self._call("POST", "/mode", mode)

    def wait_for(self, fetch, predicate, count, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            items = fetch()
            matching = [x for x in items if predicate(x)]
            if len(matching) >= count:
                return items
            if time.monotonic() > deadline:
                names = [x.get("name", x.get("path")) for x in items]
                raise AssertionError("waited %ss for %d %s, got %d matching of %d: %s"
                                     % (timeout, count, what, len(matching), len(items), names[:50]))
            time.sleep(0.05)

    def wait_for_spans(self, predicate=None, count=1, timeout=20):
        """All spans received, once at least count of them match predicate."""
        return self.wait_for(self.spans, predicate or (lambda s: True), count, timeout, "spans")

    def wait_for_requests(self, predicate=None, count=1, timeout=20):
        return self.wait_for(self.requests, predicate or (lambda r: True), count, timeout, "requests")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
