"""Hook functions, class-based view methods and Flask-RESTful internals as
child spans of the request span."""
from agent import agent_env, gunicorn, server_spans


def trace(otlp, route, count):
    spans = otlp.wait_for_spans(lambda s: s["name"] == route and s["kind"] == 2)
    (root,) = server_spans(spans, route)
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count + 1)
    children = [s for s in spans if s["traceId"] == root["traceId"] and s["spanId"] != root["spanId"]]
    return root, {s["name"]: s for s in children}, children


def test_hooks_and_method_view(otlp):
    with gunicorn("restful:app", agent_env(otlp), workers=1) as server:
        status, _, headers = server.get("/admin/items/5")
        assert status == 200 and headers.get("X-Traced") == "1"
        root, by_name, children = trace(otlp, "GET /admin/items/<int:item_id>", 5)
    assert set(by_name) == {"load_user", "require_admin", "ItemView.get", "add_header", "close_session"}, \
        sorted(by_name)
    assert all(s["parentSpanId"] == root["spanId"] for s in children)
    assert by_name["load_user"]["attributes"]["flask.hook"] == "before_request"
    assert by_name["require_admin"]["attributes"]["flask.blueprint"] == "admin"
    assert by_name["add_header"]["attributes"]["flask.hook"] == "after_request"
    assert by_name["close_session"]["attributes"]["flask.hook"] == "teardown_request"
    order = sorted(children, key=lambda s: int(s["startTimeUnixNano"]))
    assert [s["name"] for s in order] == ["load_user", "require_admin", "ItemView.get", "add_header",
                                          "close_session"]


def test_restful_resource_reqparse_and_marshal(otlp):
    with gunicorn("restful:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/todos?limit=3")
        assert status == 200 and body.count('"task"') == 3
        root, by_name, children = trace(otlp, "GET /todos", 6)
    resource = by_name["TodoList.get"]
    assert resource["parentSpanId"] == root["spanId"]
    assert by_name["reqparse.parse_args"]["parentSpanId"] == resource["spanId"]
    assert by_name["flask_restful.marshal"]["parentSpanId"] == resource["spanId"]
    assert "require_admin" not in by_name, "blueprint hooks only run for their blueprint"
    assert sorted(s["name"] for s in children) == ["TodoList.get", "add_header", "close_session",
                                                   "flask_restful.marshal", "load_user", "reqparse.parse_args"], \
        "a list is marshalled in one span, not one per item"
    assert root["attributes"]["code.function"] == "TodoList", "the resource class, not as_view's function"


def test_restful_abort_404_is_not_a_server_error(otlp):
    with gunicorn("restful:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/todos/7")
        assert status == 404 and "todo 7 does not exist" in body
        root, by_name, children = trace(otlp, "GET /todos/<int:todo_id>", 4)
    assert root["attributes"]["http.response.status_code"] == 404
    assert root["status"].get("code", 0) == 0, "Flask-RESTful sends got_request_exception for a 404 too"
    assert not [e for e in root.get("events", []) if e["name"] == "exception"], root["events"]
    resource = by_name["Todo.get"]
    assert resource["status"].get("code", 0) == 0 and resource["attributes"]["http.response.status_code"] == 404


def test_no_hook_spans_when_the_app_has_none(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        server.get("/hello/x")
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>")
    (root,) = server_spans(spans, "GET /hello/<name>")
    assert [s["name"] for s in spans if s["traceId"] == root["traceId"]] == ["GET /hello/<name>"]
