"""The app every installed package runs. `python app.py [--code-first]`
serves it with Flask's own server; gunicorn serves `app:app`."""
import os
import sys

from flask import Flask

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/hello/<name>")
def hello(name):
    return "hello %s" % name


@app.route("/fail")
def fail():
    raise RuntimeError("packaged failure")


if __name__ == "__main__":
    if "--code-first" in sys.argv:
        # No preload at all: the installed package traces the app itself.
        from tigerops.contrib.flask import TigerOps
        TigerOps(app)
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=False)
