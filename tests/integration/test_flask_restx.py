"""Flask-RESTX under gunicorn: the request span is named after the route
with the blueprint and namespace prefixes, each Resource method is a child
span with the class and method as code attributes, reqparse and marshal
are children of it, a payload that fails expect(validate=True) is the 400
the framework answers (not an error), an exception is recorded, and the
Swagger spec is traced like any resource."""
import json
import subprocess
import urllib.error
import urllib.request

import pytest

from agent import PYTHON, agent_env, gunicorn, server_spans
from otlp import OtlpReceiver


def _importable(module):
    return subprocess.run([PYTHON, "-c", "import " + module], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _importable("flask_restx"),
                                reason="flask_restx is not installed for %s (Debian 12 does not package it; "
                                       "the pip venvs have it)" % PYTHON)


def send(server, method, path, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(server.base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def tree(spans, root):
    """{name: span} of root's trace, and the list (names may repeat)."""
    members = [s for s in spans if s["traceId"] == root["traceId"] and s["spanId"] != root["spanId"]]
    return {s["name"]: s for s in members}, members


def one_server_span(spans, name, path):
    found = [s for s in server_spans(spans, name) if s["attributes"]["url.path"] == path]
    assert len(found) == 1, (name, path, [s["name"] for s in server_spans(spans)])
    return found[0]


def exception_events(span):
    return [e for e in span.get("events", []) if e["name"] == "exception"]


@pytest.fixture(scope="module")
def api_spans():
    """Runs one of each request against the app once; returns the spans."""
    with OtlpReceiver() as otlp, gunicorn("restx:app", agent_env(otlp), workers=1) as server:
        assert send(server, "GET", "/api/todos/?limit=2") == (200, [{"id": 1, "task": "a"},
                                                                    {"id": 2, "task": "b"}])
        assert send(server, "POST", "/api/todos/", {"task": "write tests"}) == (201, {"id": 4,
                                                                                   "task": "write tests"})
        status, body = send(server, "POST", "/api/todos/", {"task": 5})
        assert status == 400 and "task" in body["errors"], body
        status, body = send(server, "GET", "/api/todos/9")
        assert status == 404 and "todo 9 does not exist" in body["message"], body
        status, body = send(server, "DELETE", "/api/todos/1")
        assert status == 500, body
        status, spec = send(server, "GET", "/api/swagger.json")
        assert status == 200 and "/todos/" in spec["paths"], spec
        otlp.wait_for_spans(lambda s: s["kind"] == 2, count=6)
        # The children end before their request span: all are in by now,
        # but they may have come in the export before; wait for the count.
        return otlp.wait_for_spans(lambda s: s["kind"] == 1, count=9)


def test_resource_method_span_with_reqparse_and_one_marshal_span(api_spans):
    root = one_server_span(api_spans, "GET /api/todos/", "/api/todos/")
    assert root["attributes"]["http.route"] == "/api/todos/"
    assert root["attributes"]["http.response.status_code"] == 200 and root["status"].get("code", 0) == 0
    assert root["attributes"]["code.function"] == "TodoList", root["attributes"]
    assert root["attributes"]["flask.blueprint"] == "api"
    by_name, members = tree(api_spans, root)
    resource = by_name["TodoList.get"]
    assert resource["parentSpanId"] == root["spanId"]
    assert resource["attributes"]["code.function"] == "TodoList.get"
    assert resource["attributes"]["code.namespace"] == "restx"
    assert by_name["reqparse.parse_args"]["parentSpanId"] == resource["spanId"]
    assert by_name["flask_restx.marshal"]["parentSpanId"] == resource["spanId"]
    assert sorted(s["name"] for s in members) == ["TodoList.get", "flask_restx.marshal", "reqparse.parse_args"], \
        "a list is marshalled in one span, not one per item"


def test_post_with_expect_and_marshal_with(api_spans):
    (root,) = [s for s in server_spans(api_spans, "POST /api/todos/")
               if s["attributes"]["http.response.status_code"] == 201]
    by_name, members = tree(api_spans, root)
    assert by_name["TodoList.post"]["parentSpanId"] == root["spanId"]
    assert by_name["flask_restx.marshal"]["parentSpanId"] == by_name["TodoList.post"]["spanId"]
    assert len(members) == 2


def test_a_payload_failing_validation_is_the_400_the_framework_answers(api_spans):
    (root,) = [s for s in server_spans(api_spans, "POST /api/todos/")
               if s["attributes"]["http.response.status_code"] == 400]
    assert root["status"].get("code", 0) == 0, "a 4xx is the client's error, not the server span's"
    assert not exception_events(root), root["events"]
    assert root["attributes"]["http.route"] == "/api/todos/"
    by_name, members = tree(api_spans, root)
    resource = by_name["TodoList.post"]
    assert resource["status"].get("code", 0) == 0 and not exception_events(resource), resource
    assert resource["attributes"]["http.response.status_code"] == 400
    assert "flask_restx.marshal" not in by_name, "the method never ran"


def test_abort_404_in_a_namespace(api_spans):
    root = one_server_span(api_spans, "GET /api/todos/<int:todo_id>", "/api/todos/9")
    assert root["attributes"]["http.response.status_code"] == 404
    assert root["status"].get("code", 0) == 0 and not exception_events(root), root
    by_name, _ = tree(api_spans, root)
    assert by_name["Todo.get"]["attributes"]["http.response.status_code"] == 404
    assert by_name["Todo.get"]["status"].get("code", 0) == 0


def test_an_exception_in_a_resource_is_recorded(api_spans):
    root = one_server_span(api_spans, "DELETE /api/todos/<int:todo_id>", "/api/todos/1")
    assert root["attributes"]["http.response.status_code"] == 500
    assert root["status"]["code"] == 2
    assert root["attributes"]["error.type"] == "RuntimeError", root["attributes"]
    (event,) = exception_events(root)
    assert event["attributes"]["exception.message"] == "the todo store is read-only"
    assert ", in delete\n" in event["attributes"]["exception.stacktrace"]
    by_name, _ = tree(api_spans, root)
    resource = by_name["Todo.delete"]
    assert resource["status"]["code"] == 2 and resource["parentSpanId"] == root["spanId"]


def test_swagger_spec_is_traced(api_spans):
    root = one_server_span(api_spans, "GET /api/swagger.json", "/api/swagger.json")
    assert root["attributes"]["http.route"] == "/api/swagger.json"
    by_name, _ = tree(api_spans, root)
    assert by_name["SwaggerView.get"]["parentSpanId"] == root["spanId"]
