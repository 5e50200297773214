"""Flask-Login with a request loader (the X-User header names the user):
/me reads current_user, /public never does, /stream reads it inside a
stream_with_context generator; /sessions counts the user loads."""
import os

from flask import Flask, Response, stream_with_context
from flask_login import LoginManager, UserMixin, current_user

app = Flask(__name__)
if os.environ.get("LOGIN_APP_CAPTURE_USER"):
    app.config["TIGEROPS_CAPTURE_USER"] = True
login_manager = LoginManager(app)
LOADS = []


class User(UserMixin):
    def __init__(self, user_id):
        self.id = user_id


@login_manager.request_loader
def load_from_header(request):
    LOADS.append(request.path)
    name = request.headers.get("X-User")
    return User(name) if name else None


@app.route("/me")
def me():
    return "anonymous" if current_user.is_anonymous else "user " + current_user.get_id()


@app.route("/public")
def public():
    return "public"


@app.route("/stream")
def stream():
    def generate():
        yield "hello "
        yield current_user.get_id() or "anonymous"
    return Response(stream_with_context(generate()))


@app.route("/loads")
def loads():
    return ",".join(LOADS)


@app.route("/health")
def health():
    return "ok"
