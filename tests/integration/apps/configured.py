"""Settings in app.config, set after the app is created (as factories do)."""
from flask import Flask

app = Flask(__name__)
app.config["TIGEROPS_SERVICE_NAME"] = "from-app-config"
app.config["TIGEROPS_ENVIRONMENT"] = "staging"


@app.route("/health")
def health():
    return "ok"
