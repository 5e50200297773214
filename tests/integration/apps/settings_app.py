"""The product page's setup: settings in a .env file loaded before the app
is created, app.config switches for Celery and caches, Flask-Caching and a
Celery task published from a request."""
import os

if os.environ.get("DOTENV_PATH"):
    from dotenv import load_dotenv
    load_dotenv(os.environ["DOTENV_PATH"])

from celery import Celery  # noqa: E402
from flask import Flask  # noqa: E402
from flask_caching import Cache  # noqa: E402

celery = Celery("settings_app", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))


@celery.task
def noop():
    return None


def create_app():
    app = Flask(__name__)
    for key in ("TIGEROPS_TRACE_CELERY", "TIGEROPS_TRACE_CACHE"):
        if os.environ.get("APP_" + key):
            app.config[key] = os.environ["APP_" + key] == "true"
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})

    @app.route("/health")
    def health():
        return "ok"

    @app.route("/internal/ping")
    def internal_ping():
        return "pong"

    @app.route("/cached")
    def cached():
        cache.set("greeting", "hi")
        return cache.get("greeting") or "miss"

    @app.route("/publish")
    def publish():
        noop.delay()
        return "queued"

    return app


app = create_app()
