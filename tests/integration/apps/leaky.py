"""An app whose requests are full of secrets and personal data, for the
test that greps the exported bytes for each of them."""
import os

import requests
import sqlalchemy
from flask import Flask, jsonify, request

import tigerops

app = Flask(__name__)
engine = sqlalchemy.create_engine(os.environ["SECRETS_DB_URL"])


@app.route("/checkout/<email>")
def checkout(email):
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(
            "SELECT 1 WHERE 'sql-literal-secret' <> 'jane.sql@example.org' AND 4111111111111111 > 0"))
    target = request.args.get("upstream")
    if target:
        # Credentials in the URL, a signature in the query: the client span's url.full.
        requests.get(target, timeout=5)
    tigerops.current_span().set_attribute("customer.note", "call me at +44 20 7946 0958 or %s" % email)
    with tigerops.span("charge") as span:
        span.set_attribute("card.raw", "5500-0000-0000-0004")
    response = jsonify(ok=True)
    response.set_cookie("session", "set-cookie-secret-value")
    response.headers["X-Session-Token"] = "response-token-secret"
    response.headers["X-Trace-Me"] = "visible-response-header"
    return response


@app.route("/fail/<email>")
def fail(email):
    raise ValueError("payment declined for %s card 4111 1111 1111 1111 phone (555) 123-4567" % email)
