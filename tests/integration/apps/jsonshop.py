"""A plain Flask app for comparing the OTLP/JSON and OTLP/protobuf exports
of the same requests (tests/integration/test_json_export.py). Everything is
traced zero-code except /typed, which sets attributes of every value type
through the optional tigerops API (the instrumentation itself only makes
strings and integers). Strings carry what an encoder can get wrong: quotes,
backslashes, control characters, non-ASCII, PII, and a bind value that
SQLAlchemy echoes into an exception text."""
import os

from flask import Flask
from sqlalchemy import create_engine, text

SECRET = "sk_live_JSONSECRET42"
TRICKY = 'bad "quote" back\\slash tab\t nl\n ctl\x01\x1f caf\u00e9 \u2603 \U0001F600 mail bob@example.com ' \
         'card 4111 1111 1111 1111'

engine = create_engine("sqlite:///" + os.environ["JSONSHOP_DB"])
with engine.begin() as conn:
    conn.execute(text("DROP TABLE IF EXISTS tokens"))
    conn.execute(text("CREATE TABLE tokens (token TEXT UNIQUE)"))

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/user/<name>")
def user(name):
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM tokens WHERE token = :t"), {"t": name}).scalar()
    return "hello"


@app.route("/fail")
def fail():
    raise ValueError(TRICKY)


@app.route("/dup")
def dup():
    for _ in range(2):  # the second insert fails: [parameters: ...] echoes SECRET
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO tokens (token) VALUES (:t)"), {"t": SECRET})
    return "unreachable"


@app.route("/typed")
def typed():
    import tigerops
    tigerops.current_span().set_attributes({
        "t.str": TRICKY, "t.empty": "", "t.true": True, "t.false": False,
        "t.max": 2 ** 63 - 1, "t.min": -2 ** 63, "t.safe": 2 ** 53 + 1,
        "t.ratio": 0.1, "t.third": 1 / 3, "t.huge": -1e300, "t.nan": float("nan"), "t.inf": float("inf"),
        "t.words": ["a", 'b"c', "", "d\ne"], "t.ints": [1, -2 ** 63, 2 ** 62], "t.floats": [0.5, -0.0],
        "t.bools": [True, False], "t.none": [],
    })
    return "typed"
