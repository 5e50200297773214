"""A Flask app that logs: the records its views make come back in the
response (fields the agent adds included) through a capturing handler. It
installs its own LogRecordFactory at import, the way the logging docs show
(chaining the factory it found), and a second one that replaces it with a
LogRecord subclass when LOGSAPP_RECORD_CLASS is set."""
import logging
import os
import threading

from flask import Flask, jsonify

_local = threading.local()


class Capture(logging.Handler):
    def emit(self, record):
        _local.last = record


log = logging.getLogger("shop")
log.setLevel(logging.DEBUG)
log.addHandler(Capture())

_old_factory = logging.getLogRecordFactory()


def _factory(*args, **kwargs):
    record = _old_factory(*args, **kwargs)
    record.custom_attribute = "from the app's factory"
    return record


logging.setLogRecordFactory(_factory)

if os.environ.get("LOGSAPP_RECORD_CLASS"):
    class AppRecord(logging.LogRecord):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.custom_attribute = "from the app's LogRecord class"

    logging.setLogRecordFactory(AppRecord)

log.warning("imported, outside any request")

app = Flask(__name__)
if os.environ.get("LOGSAPP_SERVICE_NAME"):
    app.config["TIGEROPS_SERVICE_NAME"] = os.environ["LOGSAPP_SERVICE_NAME"]


def fields():
    r = _local.last
    return jsonify({k: getattr(r, k, None) for k in (
        "otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName", "custom_attribute", "msg")})


@app.route("/health")
def health():
    return "ok"


@app.route("/warn")
def warn():
    log.warning("stock low for %s", "sku-42")
    return fields()


@app.route("/info")
def info():
    log.info("an info line")
    return fields()


@app.route("/exception")
def exception():
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed")
    return fields()


@app.route("/secret")
def secret():
    log.warning("login for carol@example.com with Authorization: Bearer abc123.def456 refused")
    return fields()
