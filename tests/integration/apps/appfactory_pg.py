"""A worker that makes a Flask app with Flask-SQLAlchemy per job (the
create_app-per-Celery-task pattern). Prints how many of the dropped apps
are still alive and how many PostgreSQL connections the process holds
after the jobs; argv: jobs, gc-on|gc-off (the cyclic collector)."""
import gc
import os
import sys
import weakref

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    db = SQLAlchemy(app)

    @app.route("/health")
    def health():
        return "ok"

    return app, db


def job():
    app, db = create_app()
    with app.app_context():
        db.session.execute(text("SELECT 1")).all()
        db.session.remove()
    with app.test_client() as client:
        client.get("/health")
    return weakref.ref(app)


if sys.argv[2] == "gc-off":
    gc.disable()
refs = [job() for _ in range(int(sys.argv[1]))]
alive = sum(1 for r in refs if r() is not None)
probe_app, probe_db = create_app()
with probe_app.app_context():
    mine = probe_db.session.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE pid != pg_backend_pid() "
        "AND application_name = current_setting('application_name')")).scalar()
print("alive=%d connections=%d" % (alive, mine))
