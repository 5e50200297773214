"""The test receiver with its OTLP/gRPC server (and TLS), and a throwaway
PKI made with openssl for the TLS tests."""
import os
import subprocess
import tempfile

from otlp import OtlpReceiver


class GrpcReceiver(OtlpReceiver):
    """OtlpReceiver plus OTLP/gRPC on its own port; gRPC exports land in the
    same /spans and /requests (path .../TraceService/Export, transport grpc).
    With tls (a Pki), gRPC speaks TLS and an HTTPS twin of the HTTP receiver
    listens too; require_client_cert makes both insist on mTLS."""

    def __init__(self, tls=None, require_client_cert=False):
        args = ["--grpc-port", "0"]
        if tls:
            args += ["--tls-cert", tls.server_cert, "--tls-key", tls.server_key, "--tls-ca", tls.ca]
            if require_client_cert:
                args.append("--require-client-cert")
        super().__init__(args=args)
        host = "localhost" if tls else "127.0.0.1"
        self.grpc_endpoint = "%s://%s:%d" % ("https" if tls else "http", host, self.grpc_port)
        self.https_endpoint = "https://localhost:%d" % self.https_port if self.https_port else None

    def set_grpc_mode(self, status=None, message=None, retry_info_ms=None, fail_count=None, delay_ms=0,
                      partial_rejected=None, partial_message=None):
        """The next fail_count calls (every call when None) end with gRPC
        status; retry_info_ms adds a google.rpc.RetryInfo detail; partial_*
        answer OK with partial_success. No argument: answer OK again."""
        mode = {}
        for key, value in (("grpcStatus", status), ("grpcMessage", message), ("retryInfoMs", retry_info_ms),
                           ("failCount", fail_count), ("partialRejected", partial_rejected),
                           ("partialMessage", partial_message)):
            if value is not None:
                mode[key] = value
        if delay_ms:
            mode["delayMs"] = delay_ms
        self._call("POST", "/mode", mode)

    def grpc_requests(self, path="/opentelemetry.proto.collector.trace.v1.TraceService/Export"):
        """The gRPC calls to path (TraceService's by default; None: all)."""
        return [r for r in self.requests() if r.get("transport") == "grpc" and (path is None or r["path"] == path)]


# gRPC status codes the tests use
UNAVAILABLE, RESOURCE_EXHAUSTED, UNAUTHENTICATED, INVALID_ARGUMENT = 14, 8, 16, 3


class Pki:
    """A CA, a server certificate for localhost/127.0.0.1 and a client
    certificate, all signed by the CA, in a temporary directory."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="tigerops-pki-")
        d = self.dir = self._dir.name
        self.ca, self.ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
        self.server_cert, self.server_key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
        self.client_cert, self.client_key = os.path.join(d, "client.pem"), os.path.join(d, "client.key")
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key, "-out", self.ca,
                      "-days", "2", "-subj", "/CN=tigerops-test-ca")
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self._issue("server", self.server_cert, self.server_key, "/CN=localhost", ext)
        self._issue("client", self.client_cert, self.client_key, "/CN=tigerops-test-client", None)

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

    def _issue(self, name, cert, key, subject, ext):
        csr = os.path.join(self.dir, name + ".csr")
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        args = ["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                "-out", cert, "-days", "2"]
        if ext:
            args += ["-extfile", ext]
        self._openssl(*args)

    def cleanup(self):
        self._dir.cleanup()
