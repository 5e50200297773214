"""A plain Flask app, no agent code at all."""
import time

from flask import Flask, Response, request

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/hello/<name>")
def hello(name):
    return "hello " + name


@app.route("/fail")
def fail():
    raise RuntimeError("boom from the view")


@app.route("/slow")
def slow():
    time.sleep(float(request.args.get("s", "0.2")))
    return "slow"


@app.route("/stream")
def stream():
    def chunks():
        for i in range(3):
            time.sleep(0.1)
            yield "chunk %d\n" % i
    return Response(chunks(), mimetype="text/plain")


@app.route("/chained")
def chained():
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("lookup failed") from exc


@app.route("/deep")
def deep():
    def recurse(n):
        if n == 0:
            raise ValueError("x" * 3_000_000)  # a message of megabytes
        return recurse(n - 1)
    return recurse(900)


@app.route("/recursion")
def recursion():
    import sys
    sys.setrecursionlimit(30000)

    def recurse(n):
        if n == 0:
            raise LookupError("bottom of 10,000 frames")
        return recurse(n - 1)
    return recurse(10_000)


class PaymentDeclined(Exception):
    pass


@app.errorhandler(PaymentDeclined)
def payment_declined(exc):
    return "payment failed: %s" % exc, 500


@app.errorhandler(KeyError)
def missing_key(exc):
    return "not found", 404


@app.route("/declined")
def declined():
    raise PaymentDeclined("card refused by the bank")


@app.route("/missing")
def missing():
    raise KeyError("no such item")



class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


@app.route("/unprintable")
def unprintable():
    raise Unprintable()
