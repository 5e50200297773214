"""One local sink for every agent's exporter, on 127.0.0.1: answers what
each protocol expects and counts requests and bytes per path.

    /usr/bin/python3 bench/peers/sink.py [PORT]    # prints "LISTENING <port>"

- OTLP/HTTP (OpenTelemetry, TigerOps): POST /v1/traces -> 200, empty protobuf.
- Datadog agent API (ddtrace): PUT/POST /v0.4|/v0.5/traces -> 200 with an empty
  rate_by_service (so ddtrace keeps its default 100%); telemetry and other
  POSTs -> 202; GET /info and remote-config polls -> 404 (an agent without
  those features: ddtrace then uses its defaults).
- Sentry envelopes: POST /api/<project>/envelope/ -> 200.
GET /stats returns the counts as JSON (harness checks that every agent
actually exported something)."""
import http.server
import json
import sys
import threading

counts = {}
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            data = self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        else:
            data = b""
        path = self.path.split("?")[0]
        key = "otlp" if path.endswith("/v1/traces") else "ddtrace" if "/traces" in path else \
            "sentry" if "/envelope" in path else "other:" + path
        with lock:
            n, b = counts.get(key, (0, 0))
            counts[key] = (n + 1, b + len(data))
        return path

    def _reply(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        path = self._body()
        if path.endswith("/v1/traces"):
            self._reply(200, b"", "application/x-protobuf")
        elif "/traces" in path:
            self._reply(200, b'{"rate_by_service":{}}')
        elif "/envelope" in path or "/store" in path:
            self._reply(200, b"{}")
        else:
            self._reply(202, b"{}")

    do_PUT = do_POST

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                self._reply(200, json.dumps(counts).encode())
        else:
            self._reply(404, b"{}")

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # an exporter dropping its connection at exit is no news


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Sink)
    print("LISTENING", server.server_address[1], flush=True)
    server.serve_forever()
