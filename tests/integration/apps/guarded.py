"""An app whose before_request hook refuses one path."""
from flask import Flask, request

app = Flask(__name__)


@app.before_request
def guard():
    if request.path == "/guarded":
        raise PermissionError("the guard hook refused")


@app.route("/guarded")
def guarded():
    return "never reached"
