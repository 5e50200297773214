"""Settings in app.config, set after the app is created (as factories do)."""
from flask import Flask

app = Flask(__name__)
app.config["TIGEROPS_SERVICE_NAME"] = "from-app-config"
app.config["TIGEROPS_ENVIRONMENT"] = "staging"
app.config["TIGEROPS_EXCLUDED_URLS"] = "/internal/"


@app.route("/health")
def health():
    return "ok"


@app.route("/internal/ping")
def internal_ping():
    return "pong"
