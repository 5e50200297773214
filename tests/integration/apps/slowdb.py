"""A statement slower than its app's TIGEROPS_SLOW_QUERY_MS (SQLite, with a
sleeping SQL function)."""
import time

from flask import Flask
from sqlalchemy import create_engine, event, text

engine = create_engine("sqlite://", future=True)


@event.listens_for(engine, "connect")
def add_sleep(dbapi_connection, record):
    dbapi_connection.create_function("sleep_ms", 1, lambda ms: time.sleep(ms / 1000.0) or 0)


app = Flask(__name__)
app.config["TIGEROPS_SLOW_QUERY_MS"] = 20


@app.route("/health")
def health():
    return "ok"


@app.route("/slow")
def slow():
    with engine.connect() as conn:
        conn.execute(text("SELECT sleep_ms(60)"))
    return "ok"
