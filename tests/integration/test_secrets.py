"""Secrets and personal data never leave the process: one request carries
credentials in every place a request can, plus e-mails, card numbers and
phone numbers, with header capture asked for every credential header; the
exported OTLP bytes (every export request, gunzipped) and the agent's own
log (at debug level) are then searched for each of them."""
from agent import agent_env, gunicorn, server_spans

API_KEY = "tgo-api-key-0123456789secret"
SECRETS = [
    API_KEY,
    "bearer-token-secret",          # Authorization
    "proxy-auth-secret",            # Proxy-Authorization
    "cookie-secret-value",          # Cookie
    "set-cookie-secret-value",      # Set-Cookie (response)
    "x-api-key-secret",             # X-Api-Key
    "internal-token-secret",        # a header named in TIGEROPS_DENIED_HEADERS
    "response-token-secret",        # a sanitized response header
    "sanitized-request-secret",     # a sanitized request header
    "query-token-secret",           # ?token=
    "aws-signature-secret",         # ?X-Amz-Signature=
    "userinfo-password",            # http://user:pass@ in an outgoing URL
    "upstream-sig-secret",          # ?sig= in an outgoing URL
    "pg-secret-password",           # the database password
    "sql-literal-secret",           # a SQL string literal
]
PII = [
    "jane.doe@example.com", "jane.sql@example.org", "4111111111111111", "4111 1111 1111 1111",
    "5500-0000-0000-0004", "+44 20 7946 0958", "(555) 123-4567", "7946 0958",
]

CAPTURE = {
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST":
        "authorization,proxy-authorization,cookie,x-api-key,x-internal-token,x-sanitize-me,user-agent,x-request-.*",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "set-cookie,x-session-token,x-trace-me",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS": "x-session-token,x-sanitize-.*",
    "TIGEROPS_DENIED_HEADERS": "x-internal-token",
}


def test_no_secret_or_personal_data_leaves_the_process(otlp, postgres):
    env = agent_env(otlp, TIGEROPS_API_KEY=API_KEY, TIGEROPS_LOG_LEVEL="debug",
                    SECRETS_DB_URL=postgres.url, **CAPTURE)
    with gunicorn("leaky:app", env, workers=1) as server:
        upstream = "http://app-user:userinfo-password@%s/v1/ping?sig=upstream-sig-secret&page=2" % (
            otlp.endpoint.split("//", 1)[1])
        headers = {
            "Authorization": "Bearer bearer-token-secret",
            "Proxy-Authorization": "Basic proxy-auth-secret",
            "Cookie": "session=cookie-secret-value",
            "X-Api-Key": "x-api-key-secret",
            "X-Internal-Token": "internal-token-secret",
            "X-Sanitize-Me": "sanitized-request-secret",
            "X-Request-Id": "req-42",
            "User-Agent": "probe/1.0 (jane.doe@example.com)",
        }
        path = ("/checkout/jane.doe@example.com?token=query-token-secret&X-Amz-Signature=aws-signature-secret"
                "&card=4111111111111111&upstream=" + upstream.replace("&", "%26"))
        status, _, _ = server.get(path, headers=headers)
        assert status == 200
        status, _, _ = server.get("/fail/jane.doe@example.com", headers=headers)
        assert status == 500
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /fail/<email>")
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /checkout/<email>")
        otlp.wait_for_spans(lambda s: s["kind"] == 3 and s["name"].startswith("GET"))
        log = server.output()
    spans = otlp.spans()
    checkout = server_spans(spans, "GET /checkout/<email>")[0]["attributes"]
    failed = server_spans(spans, "GET /fail/<email>")[0]

    # What was asked for and is allowed is there: proof the capture ran.
    assert checkout["http.request.header.x-request-id"] == ["req-42"]
    assert checkout["http.response.header.x-trace-me"] == ["visible-response-header"]
    assert checkout["http.request.header.x-sanitize-me"] == ["[REDACTED]"]
    assert checkout["http.response.header.x-session-token"] == ["[REDACTED]"]
    for denied in ("authorization", "proxy-authorization", "cookie", "x-api-key", "x-internal-token"):
        assert "http.request.header." + denied not in checkout
    assert "http.response.header.set-cookie" not in checkout
    assert checkout["http.request.header.user-agent"] == ["probe/1.0 (****.***@*******.***)"]
    assert "url.query" in checkout and "REDACTED" in checkout["url.query"]
    events = [e for e in failed["events"] if e["name"] == "exception"]
    assert events and "ValueError" in events[0]["attributes"]["exception.stacktrace"]
    assert "**** **** **** ****" in events[0]["attributes"]["exception.message"]
    db = [s["attributes"]["db.query.text"] for s in spans if "<>" in s["attributes"].get("db.query.text", "")]
    assert db == ["SELECT ? WHERE ? <> ? AND ? > ?"]
    client = [s for s in spans if s["kind"] == 3 and "url.full" in s["attributes"]]
    assert client and "REDACTED" in client[0]["attributes"]["url.full"]

    wire = b"".join(otlp.bodies())
    assert b"GET /checkout/<email>" in wire
    for secret in SECRETS + PII:
        at = wire.find(secret.encode())
        assert at < 0, "%r was exported: ...%r..." % (secret, wire[max(0, at - 200):at + 60])
    assert "tigerops" in log.lower(), "the agent's debug log is part of the check"
    for secret in SECRETS:
        assert secret not in log, "%r was logged" % secret
