"""Requests that yield to each other inside nested span() blocks: gevent or
eventlet sleeps, SQL and an outgoing HTTP call back into this server, so
many requests interleave on one OS thread. Run with `gunicorn -k gevent`,
`-k eventlet`, or `python greenlets.py PORT` (patch_all by the app itself)."""
import os
import sys

if __name__ == "__main__":
    from gevent import monkey
    monkey.patch_all()

import requests
from flask import Flask
from sqlalchemy import create_engine, text

import tigerops

if "eventlet" in sys.modules and sys.modules["eventlet"].patcher.is_monkey_patched("socket"):
    from eventlet import sleep
else:
    from gevent import sleep

app = Flask(__name__)
engine = create_engine("sqlite://")
BASE = os.environ.get("SELF_URL", "")
session = requests.Session()


@app.route("/health")
def health():
    return "ok"


@app.route("/work/<int:i>")
def work(i):
    with tigerops.span("outer-%d" % i):
        sleep(0.01)
        with tigerops.span("inner-%d" % i):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1 AS request_%d" % i)).fetchall()
            sleep(0.01)
            session.get("%s/leaf/%d" % (BASE, i), timeout=30)
        sleep(0.005)
    return "ok"


@app.route("/leaf/<int:i>")
def leaf(i):
    sleep(0.005)
    return "leaf"


if __name__ == "__main__":
    from gevent.pywsgi import WSGIServer
    port = int(sys.argv[1])
    BASE = "http://127.0.0.1:%d" % port
    WSGIServer(("127.0.0.1", port), app, log=None).serve_forever()
