"""Serves a request while being imported: under gunicorn --preload that is
the master, which then forks the workers with that span still buffered."""
import os

from flask import Flask

app = Flask(__name__)
MASTER_PID = os.getpid()


@app.route("/warm")
def warm():
    return str(MASTER_PID)


@app.route("/health")
def health():
    return "ok"


@app.route("/hello/<name>")
def hello(name):
    return "hello " + name


assert app.test_client().get("/warm").status_code == 200
