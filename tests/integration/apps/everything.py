"""Imports every library the agent hooks that is installed and runs each
instrumented path once inside one test-client request: SQL (SQLAlchemy 2.0
style through Flask-SQLAlchemy, and sqlite3 directly), a cache, a template,
HTTP clients (requests, httpx, urllib3, urllib.request) against a local
server, a Celery publish, Redis, a Flask-RESTX and a Flask-RESTful
resource, Flask-Login. Run with -W error::DeprecationWarning: a deprecated
API the agent touches fails the import or shows in the agent's log.
argv: redis URL. Prints the hooked modules it could not import."""
import importlib
import sys
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

HOOKED = ["flask.app", "flask.views", "sqlalchemy.engine.create", "requests.sessions", "httpx._client",
          "jinja2.environment", "redis.client", "flask_caching", "celery.app.base", "flask_restful",
          "flask_restful.reqparse", "flask_restx", "pymemcache.client.base", "asgiref.wsgi", "sqlite3.dbapi2",
          "psycopg2", "psycopg", "pymysql", "urllib3.connectionpool", "urllib.request", "aiohttp.client",
          "flask_login"]
missing = []
for name in HOOKED:
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
print("not installed:", " ".join(missing) or "-")

import sqlite3  # noqa: E402

import httpx  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402
import urllib3  # noqa: E402
from celery import Celery  # noqa: E402
from flask import Flask, render_template_string  # noqa: E402
from flask_caching import Cache  # noqa: E402
from flask_login import LoginManager, UserMixin, current_user  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402
from sqlalchemy import Integer, String, select  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # noqa: E402

import tigerops  # noqa: E402


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def target(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"pong"]


httpd = make_server("127.0.0.1", 0, target, handler_class=Quiet)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
TARGET = "http://127.0.0.1:%d/ping" % httpd.server_port


class Base(DeclarativeBase):
    pass


app = Flask(__name__)
app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", CACHE_TYPE="SimpleCache", SECRET_KEY="x")
db = SQLAlchemy(app, model_class=Base)
cache = Cache(app)
login = LoginManager(app)
celery = Celery("everything", broker="memory://")
store = redis.Redis.from_url(sys.argv[1])


class Item(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class User(UserMixin):
    id = "u1"


@login.request_loader
def load(request):
    return User()


@celery.task
def ping():
    return "pong"


@app.route("/work")
def work():
    db.session.add(Item(name="a"))
    db.session.commit()
    names = db.session.execute(select(Item.name)).scalars().all()
    with sqlite3.connect(":memory:") as raw:
        raw.execute("select 1").fetchall()
    cache.set("k", names)
    cached = cache.get("k")
    requests.get(TARGET, timeout=5).raise_for_status()
    httpx.get(TARGET, timeout=5).raise_for_status()
    urllib3.PoolManager().request("GET", TARGET)
    urllib.request.urlopen(TARGET, timeout=5).read()
    ping.delay()
    store.set("k", "v")
    return render_template_string("{{ names|join(',') }} {{ user }}", names=cached, user=current_user.get_id())


@app.route("/fail")
def fail():
    raise LookupError("no such thing")


try:
    from flask_restful import Api as RestfulApi, Resource as RestfulResource

    class Hello(RestfulResource):
        def get(self):
            return {"hello": "restful"}

    RestfulApi(app).add_resource(Hello, "/restful")
except ImportError:
    pass

try:
    from flask import Blueprint
    from flask_restx import Api as RestxApi, Resource as RestxResource, fields

    bp = Blueprint("x", __name__, url_prefix="/x")
    restx = RestxApi(bp, doc=False)
    model = restx.model("M", {"v": fields.String(required=True)})

    @restx.route("/echo")
    class Echo(RestxResource):
        @restx.expect(model, validate=True)
        @restx.marshal_with(model)
        def post(self):
            return restx.payload

    app.register_blueprint(bp)
except ImportError:
    pass

with app.app_context():
    db.create_all()

client = app.test_client()
response = client.get("/work")
assert response.status_code == 200 and response.text == "a u1", (response.status_code, response.text)
assert client.get("/fail").status_code == 500
if "flask_restful" not in missing:
    assert client.get("/restful").json == {"hello": "restful"}
if "flask_restx" not in missing:
    assert client.post("/x/echo", json={"v": "1"}).json == {"v": "1"}
    assert client.post("/x/echo", json={"w": "1"}).status_code == 400
assert tigerops.flush(10000)
