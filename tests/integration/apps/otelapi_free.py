"""An app that never imports OpenTelemetry: under the agent it must not be
imported for it."""
import sys

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/modules")
def modules():
    return jsonify(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
