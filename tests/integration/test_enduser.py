"""enduser.id from Flask-Login: recorded on the request span only with
TIGEROPS_CAPTURE_USER=true (personal data, off by default), never for an
anonymous user, and never by loading a user the app did not load."""
import subprocess

import pytest

from agent import PYTHON, agent_env, gunicorn, server_spans


def _importable(module):
    return subprocess.run([PYTHON, "-c", "import " + module], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _importable("flask_login"),
                                reason="flask_login is not installed for %s (Debian: python3-flask-login)" % PYTHON)


def run_requests(otlp, **settings):
    """{url.path + user header: server span} for the same requests."""
    requests = [("/me", "42"), ("/me", None), ("/public", "7"), ("/stream", "alice")]
    with gunicorn("login:app", agent_env(otlp, **settings), workers=1) as server:
        answers = [server.get(path, headers={"X-User": user} if user else {})[:2] for path, user in requests]
        assert answers == [(200, "user 42"), (200, "anonymous"), (200, "public"), (200, "hello alice")]
        status, loads, _ = server.get("/loads")
        assert loads.split(",") == ["/me", "/me", "/stream"], "the agent never loads a user itself"
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 2 and s["name"] != "GET /health", count=5)
    return {(s["attributes"]["url.path"], n): s for n, s in enumerate(
        s for s in server_spans(spans) if s["attributes"]["url.path"] not in ("/health", "/loads"))}


def test_user_id_recorded_when_capture_user_is_on(otlp):
    spans = run_requests(otlp, TIGEROPS_CAPTURE_USER="true")
    assert spans[("/me", 0)]["attributes"]["enduser.id"] == "42"
    assert "enduser.id" not in spans[("/me", 1)]["attributes"], "anonymous users have no id"
    assert "enduser.id" not in spans[("/public", 2)]["attributes"], "the app never loaded the user"
    assert spans[("/stream", 3)]["attributes"]["enduser.id"] == "alice", "read when the stream ends"


def test_no_user_id_by_default(otlp):
    spans = run_requests(otlp)
    assert not [s for s in spans.values() if "enduser.id" in s["attributes"]]


def test_app_config_turns_it_on(otlp):
    with gunicorn("login:app", agent_env(otlp, TIGEROPS_CAPTURE_USER="false",
                                         LOGIN_APP_CAPTURE_USER="1"), workers=1) as server:
        server.get("/me", headers={"X-User": "9"})
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /me")
    (span,) = server_spans(spans, "GET /me")
    assert span["attributes"]["enduser.id"] == "9"
