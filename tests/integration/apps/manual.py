"""An app that also uses the code-first API."""
import os

from flask import Flask, jsonify

import tigerops
from tigerops.contrib.flask import TigerOps

app = Flask(__name__)
TigerOps(app)            # on top of the automatic instrumentation: must not double-trace
TigerOps(excluded_urls=os.environ.get("MANUAL_EXCLUDED")).init_app(app)


@tigerops.span
def compute(x):
    return x * 2


@app.route("/health")
def health():
    return "ok"


@app.route("/work")
def work():
    with tigerops.span("outer-block", attributes={"block.size": 3}) as s:
        s.set_attribute("answer", compute(21))
        s.add_event("checkpoint", {"step": 1})
    tigerops.current_span().set_attribute("custom.tag", "on-request")
    headers = tigerops.inject({})
    try:
        with tigerops.span("failing-block"):
            raise ValueError("handled inside")
    except ValueError:
        pass
    return jsonify(headers=headers)
