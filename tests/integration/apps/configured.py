"""Settings in app.config, set after the app is created (as factories do)."""
from flask import Flask

app = Flask(__name__)
app.config["TIGEROPS_SERVICE_NAME"] = "from-app-config"
app.config["TIGEROPS_ENVIRONMENT"] = "staging"
app.config["TIGEROPS_EXCLUDED_URLS"] = "/internal/"
app.config["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"] = "x-tenant"
app.config["TIGEROPS_PII_PATTERNS"] = "tenant-[0-9]+"


@app.route("/health")
def health():
    return "ok"


@app.route("/internal/ping")
def internal_ping():
    return "pong"
