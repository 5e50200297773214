"""The example app of the container image (replace it with yours)."""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/hello/<name>")
def hello(name):
    return "hello %s" % name


@app.route("/ppid")
def ppid():
    # In the image, gunicorn's master is PID 1: its workers' parent.
    return str(os.getppid())
