"""Metrics end to end, in real gunicorn under the agent: the HTTP server
metrics of every request whatever the sampler decides, exemplars that lead
to exported spans, the cardinality limit, delta vs cumulative temporality,
one series per worker, the exit flush, and a dead collector.

Every value is read from /v1/metrics as the receiver decodes it with the
official OTLP schema (otlp.metrics()). Synchronisation is GET /flush on a
single sync worker (tigerops.flush(): spans and a metrics collection are at
the receiver when it answers) or the server's graceful stop (the exit flush).
"""
import collections
import json
import time

import pytest

from agent import agent_env, gunicorn, server_spans

APP = "metered:app"
DURATION = "http.server.request.duration"
ACTIVE = "http.server.active_requests"
SEMCONV_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


def env_for(otlp, **settings):
    # A long interval: what arrives comes from the flushes the tests ask for.
    settings.setdefault("OTEL_METRIC_EXPORT_INTERVAL", "600000")
    return agent_env(otlp, OTEL_BSP_SCHEDULE_DELAY="100", **settings)


def flush(server):
    status, body, _ = server.get("/flush", timeout=20)
    assert status == 200, body
    assert json.loads(body)["flushed"] is True, body


def get(server, path, want=200):
    status, body, _ = server.get(path)
    assert status == want, (path, status, body)


def route_points(points, route, status=200):
    return [p for p in points if p["name"] == DURATION and p["attributes"].get("http.route") == route
            and p["attributes"].get("http.response.status_code") == status]


def latest(points):
    return max(points, key=lambda p: int(p["timeUnixNano"]))


def test_every_request_counts_once_in_the_duration_histogram(otlp):
    with gunicorn(APP, env_for(otlp), workers=1) as server:
        for i in range(20):
            get(server, "/work/%d" % i)
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>")
    p = latest(route_points(points, "/work/<int:i>"))
    assert p["count"] == 20
    assert sum(p["bucketCounts"]) == 20
    assert p["type"] == "histogram" and p["temporality"] == 2 and p["unit"] == "s"
    assert p["explicitBounds"] == SEMCONV_BOUNDS
    assert p["attributes"] == {"http.request.method": "GET", "http.route": "/work/<int:i>",
                               "http.response.status_code": 200, "url.scheme": "http"}
    assert 0 < p["min"] <= p["max"] < 1 and p["min"] * 20 <= p["sum"] <= p["max"] * 20


@pytest.mark.parametrize("sampler", ["always_on", "always_off"])
def test_https_requests_say_so_whether_traced_or_not(otlp, sampler):
    # gunicorn trusts X-Forwarded-Proto from 127.0.0.1: wsgi.url_scheme is
    # "https". A traced request reads it with the span's attributes, an
    # untraced one on its own; both must reach the metrics.
    env = env_for(otlp, OTEL_TRACES_SAMPLER=sampler, TIGEROPS_KEEP_ERRORS="false")
    with gunicorn(APP, env, workers=1) as server:
        for i in range(3):
            status, body, _ = server.get("/work/%d" % i, headers={"X-Forwarded-Proto": "https"})
            assert status == 200, body
        get(server, "/work/9")
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("url.scheme") == "https")
    counts = {}
    for scheme in ("https", "http"):
        of_scheme = [p for p in route_points(points, "/work/<int:i>") if p["attributes"]["url.scheme"] == scheme]
        counts[scheme] = latest(of_scheme)["count"] if of_scheme else 0
    assert counts == {"https": 3, "http": 1}, counts


def test_a_view_sleeping_120ms_lands_in_the_0_1_to_0_25_bucket(otlp):
    with gunicorn(APP, env_for(otlp), workers=1) as server:
        get(server, "/slow")
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/slow")
    p = latest(route_points(points, "/slow"))
    assert p["count"] == 1
    want = [0] * 15
    want[SEMCONV_BOUNDS.index(0.25)] = 1  # the bucket (0.1, 0.25]
    assert p["bucketCounts"] == want, p["bucketCounts"]
    assert 0.12 <= p["sum"] < 0.25


def test_one_percent_trace_sampling_still_counts_every_request(otlp):
    env = env_for(otlp, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0.01",
                  TIGEROPS_KEEP_ERRORS="false")
    n = 60
    with gunicorn(APP, env, workers=1) as server:
        for i in range(n):
            get(server, "/work/%d" % i)
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>")
        spans = server_spans(otlp.spans())
    assert latest(route_points(points, "/work/<int:i>"))["count"] == n
    assert len([s for s in spans if s["attributes"].get("http.route") == "/work/<int:i>"]) < n / 4


def test_exemplars_carry_the_ids_of_exported_request_spans(otlp):
    with gunicorn(APP, env_for(otlp), workers=1) as server:
        for i in range(5):
            get(server, "/work/%d" % i)
        get(server, "/slow")
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/slow")
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("http.route") == "/slow")
    by_id = {(s["traceId"], s["spanId"]): s for s in server_spans(spans)}
    slow = latest(route_points(points, "/slow"))
    assert len(slow["exemplars"]) == 1
    ex = slow["exemplars"][0]
    span = by_id[(ex["traceId"], ex["spanId"])]
    assert span["attributes"]["http.route"] == "/slow"
    duration = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e9
    assert abs(ex["value"] - duration) < 0.01, (ex["value"], duration)
    work = latest(route_points(points, "/work/<int:i>"))
    assert work["exemplars"], "a sampled request's bucket has one"
    for e in work["exemplars"]:
        assert by_id[(e["traceId"], e["spanId"])]["attributes"]["http.route"] == "/work/<int:i>"


def test_unsampled_requests_leave_no_exemplars(otlp):
    env = env_for(otlp, OTEL_TRACES_SAMPLER="always_off", TIGEROPS_KEEP_ERRORS="false")
    with gunicorn(APP, env, workers=1) as server:
        for i in range(5):
            get(server, "/work/%d" % i)
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>")
    p = latest(route_points(points, "/work/<int:i>"))
    assert p["count"] == 5 and p["exemplars"] == []


def test_errors_carry_error_type_and_status(otlp):
    with gunicorn(APP, env_for(otlp), workers=1) as server:
        get(server, "/work/1?fail=raise", want=500)
        get(server, "/work/2?fail=500", want=500)
        get(server, "/work/3?fail=500", want=500)
        get(server, "/nowhere", want=404)
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.response.status_code") == 404)
    errors = {p["attributes"].get("error.type"): p["count"] for p in route_points(points, "/work/<int:i>", 500)}
    assert errors == {"RuntimeError": 1, "500": 2}, errors
    not_found = [p for p in points if p["attributes"].get("http.response.status_code") == 404]
    assert not_found and "http.route" not in not_found[0]["attributes"]
    assert "error.type" not in not_found[0]["attributes"]


def series(points):
    """{(method, route, status, error.type): count} of the duration
    histogram's latest points."""
    latest_by = {}
    for p in points:
        if p["name"] != DURATION:
            continue
        a = p["attributes"]
        key = (a.get("http.request.method"), a.get("http.route"), a.get("http.response.status_code"),
               a.get("error.type"))
        if key not in latest_by or int(p["timeUnixNano"]) > int(latest_by[key]["timeUnixNano"]):
            latest_by[key] = p
    return {k: p["count"] for k, p in latest_by.items()}


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_untraced_requests_keep_route_and_status_whatever_the_answer(otlp, worker):
    # A request whose span does not record still gives its duration metric
    # its route and status: answers from a view, an error page, abort(),
    # routing's own 404 and 405 (no route), HEAD, bodies streamed
    # with and without their context, a send_file body (the server's file
    # wrapper), a Request the app keeps, another request context made and
    # dropped inside the request.
    env = env_for(otlp, OTEL_TRACES_SAMPLER="always_off", TIGEROPS_KEEP_ERRORS="false")
    extra = ("-k", "gthread", "--threads", "4") if worker == "gthread" else ()
    with gunicorn(APP, env, workers=1, extra=extra) as server:
        answers = [("GET", "/work/1", 200), ("GET", "/work/2", 200), ("GET", "/work/3?fail=500", 500),
                   ("GET", "/work/4?fail=raise", 500), ("GET", "/work/5?fail=abort", 404),
                   ("GET", "/nowhere", 404), ("POST", "/work/6", 405), ("GET", "/work/7/", 404),
                   ("HEAD", "/work/8", 200), ("GET", "/stream/3", 200), ("GET", "/stream/3?with_context=1", 200),
                   ("GET", "/file/a", 200), ("GET", "/kept/1", 200), ("GET", "/contexts/1", 200),
                   ("GET", "/contexts/2", 200)]
        for method, path, want in answers:
            status, body, _ = server.get(path, method=method)
            assert status == want, (method, path, status, body)
            if path.startswith("/stream/3"):
                assert body == "0\n1\n2\n"
            if path == "/file/a":
                assert body == "contents of a"
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/contexts/<int:i>")
    got = series(points)
    want = {("GET", "/work/<int:i>", 200, None): 2,
            ("GET", "/work/<int:i>", 500, "500"): 1,
            ("GET", "/work/<int:i>", 500, "RuntimeError"): 1,
            ("GET", "/work/<int:i>", 404, None): 1,
            ("GET", None, 404, None): 2,
            ("POST", None, 405, None): 1,
            ("HEAD", "/work/<int:i>", 200, None): 1,
            ("GET", "/stream/<int:n>", 200, None): 2,
            ("GET", "/file/<name>", 200, None): 1,
            ("GET", "/kept/<int:i>", 200, None): 1,
            ("GET", "/contexts/<int:i>", 200, None): 2}
    assert {k: v for k, v in got.items() if k[1] != "/health"} == want


def test_active_requests_counts_the_one_running(otlp):
    with gunicorn(APP, env_for(otlp), workers=1) as server:
        for i in range(3):
            get(server, "/work/%d" % i)
        flush(server)  # /flush itself is running while it collects
        points = otlp.wait_for_metric(ACTIVE)
    p = latest(points)
    assert p["type"] == "sum" and not p["isMonotonic"] and p["temporality"] == 2
    assert p["attributes"] == {"http.request.method": "GET", "url.scheme": "http"}
    assert p["value"] == 1


def test_python_instruments_record_values_and_attributes(otlp):
    with gunicorn(APP, env_for(otlp), workers=1) as server:
        get(server, "/custom?n=3")
        flush(server)
        otlp.wait_for_metric("test.custom.size")
        points = otlp.metrics()
    count = {p["attributes"]["item"]: p for p in points if p["name"] == "test.custom.count"}
    assert sorted(count) == ["i0", "i1", "i2"]
    assert count["i0"]["value"] == 1 and count["i0"]["isMonotonic"] and count["i0"]["unit"] == "{item}"
    assert count["i0"]["attributes"]["7"] is True and count["i0"]["attributes"]["odd"].startswith("<object")
    depth = [p for p in points if p["name"] == "test.custom.depth"]
    assert depth[0]["type"] == "gauge" and depth[0]["value"] == 5 and depth[0]["attributes"] == {"queue": "q"}
    assert [p["value"] for p in points if p["name"] == "test.custom.open"] == [-2]
    size = [p for p in points if p["name"] == "test.custom.size"][0]
    assert size["explicitBounds"] == [10, 100] and size["bucketCounts"] == [0, 1, 0]
    assert size["attributes"] == {"ok": True, "ratio": 0.5}


def test_past_the_cardinality_limit_one_overflow_series_takes_the_rest(otlp):
    env = env_for(otlp, TIGEROPS_METRICS_CARDINALITY_LIMIT="5")
    with gunicorn(APP, env, workers=1) as server:
        get(server, "/custom?n=20")
        flush(server)
        points = otlp.wait_for_metric("test.custom.count")
    points = [p for p in points if p["name"] == "test.custom.count"]
    assert len(points) == 5
    overflow = [p for p in points if p["attributes"] == {"otel.metric.overflow": True}]
    assert len(overflow) == 1 and overflow[0]["value"] == 16
    assert sum(p["value"] for p in points) == 20


def _two_exports(otlp, temporality):
    env = env_for(otlp, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=temporality)
    with gunicorn(APP, env, workers=1) as server:
        for i in range(3):
            get(server, "/work/%d" % i)
        flush(server)
        otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>")
        for i in range(2):
            get(server, "/work/%d" % i)
        flush(server)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>",
                                      count=2)
    return sorted(route_points(points, "/work/<int:i>"), key=lambda p: int(p["timeUnixNano"]))


def test_cumulative_points_keep_growing_from_one_start(otlp):
    first, second = _two_exports(otlp, "cumulative")
    assert (first["count"], second["count"]) == (3, 5)
    assert first["temporality"] == second["temporality"] == 2
    assert first["startTimeUnixNano"] == second["startTimeUnixNano"]


def test_delta_points_count_each_interval_once(otlp):
    first, second = _two_exports(otlp, "delta")
    assert (first["count"], second["count"]) == (3, 2)
    assert first["temporality"] == second["temporality"] == 1
    assert second["startTimeUnixNano"] == first["timeUnixNano"]


def test_two_workers_report_their_own_series_and_flush_them_at_exit(otlp):
    n = 40
    with gunicorn(APP, env_for(otlp), workers=2) as server:
        for i in range(n):
            get(server, "/work/%d" % i)
        # No flush: the 10-minute interval never comes; the exit flush delivers.
        assert otlp.metrics() == []
        server.stop()
    points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>")
    per_instance = collections.defaultdict(int)
    pids = set()
    for p in route_points(points, "/work/<int:i>"):
        per_instance[p["resource"]["service.instance.id"]] += p["count"]
        pids.add(p["resource"]["process.pid"])
    assert sum(per_instance.values()) == n, dict(per_instance)
    assert len(per_instance) == len(pids), "one instance id per process"
    # The kernel may give every connection to one worker; when both served,
    # their series must be apart.
    if len(pids) == 2:
        assert all(v > 0 for v in per_instance.values())


def test_a_dead_collector_costs_requests_nothing_and_the_exit_is_bounded(otlp):
    from util import free_port
    dead = "http://127.0.0.1:%d" % free_port()
    env = env_for(otlp, OTEL_METRIC_EXPORT_INTERVAL="20", OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=dead + "/v1/metrics",
                  OTEL_METRIC_EXPORT_TIMEOUT="200", TIGEROPS_SHUTDOWN_TIMEOUT_MS="1000")
    with gunicorn(APP, env, workers=1) as server:
        t0 = time.monotonic()
        for i in range(100):
            get(server, "/work/%d" % i)
        took = time.monotonic() - t0
        t1 = time.monotonic()
        server.stop()
        stop_took = time.monotonic() - t1
    assert took < 10, took
    assert stop_took < 8, stop_took
    # spans still reached the live receiver: only the metrics endpoint is dead
    otlp.wait_for_spans(lambda s: s["attributes"].get("http.route") == "/work/<int:i>", count=100)


def test_metrics_travel_over_grpc_to_the_metrics_service():
    from grpc_receiver import GrpcReceiver
    with GrpcReceiver() as receiver:
        env = agent_env(None, OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
                        OTEL_METRIC_EXPORT_INTERVAL="600000")
        with gunicorn(APP, env, workers=1) as server:
            for i in range(4):
                get(server, "/work/%d" % i)
            flush(server)
            points = receiver.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>")
        paths = {r["path"] for r in receiver.grpc_requests(path=None)}
    assert latest(route_points(points, "/work/<int:i>"))["count"] == 4
    assert "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" in paths


def test_http_json_sends_metrics_as_protobuf_with_one_warning(otlp):
    env = env_for(otlp, OTEL_EXPORTER_OTLP_PROTOCOL="http/json")
    with gunicorn(APP, env, workers=1) as server:
        get(server, "/work/1")
        flush(server)
        get(server, "/work/2")
        flush(server)
        otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>", count=2)
        log = server.output()
    metric_requests = [r for r in otlp.requests() if r["path"] == "/v1/metrics"]
    assert metric_requests and all(r["encoding"] == "protobuf" for r in metric_requests)
    assert all(r["headers"]["content-type"] == "application/x-protobuf" for r in metric_requests)
    assert log.count("metrics and logs are sent as http/protobuf") == 1, log


def test_metrics_exporter_none_sends_no_metrics(otlp):
    with gunicorn(APP, env_for(otlp, OTEL_METRICS_EXPORTER="none"), workers=1) as server:
        get(server, "/work/1")
        get(server, "/custom?n=2")
        flush(server)
        otlp.wait_for_spans(lambda s: s["attributes"].get("http.route") == "/custom")
    assert [r for r in otlp.requests() if r["path"] == "/v1/metrics"] == []


def test_the_export_interval_sends_without_a_flush(otlp):
    with gunicorn(APP, env_for(otlp, OTEL_METRIC_EXPORT_INTERVAL="200"), workers=1) as server:
        for i in range(3):
            get(server, "/work/%d" % i)
        points = otlp.wait_for_metric(DURATION, lambda p: p["attributes"].get("http.route") == "/work/<int:i>"
                                      and p["count"] == 3, timeout=10)
    assert points


def test_console_metrics_exporter_writes_one_line_per_point(otlp):
    with gunicorn(APP, env_for(otlp, OTEL_METRICS_EXPORTER="console"), workers=1) as server:
        for i in range(3):
            get(server, "/work/%d" % i)
        flush(server)
        log = server.output()
    assert ("tigerops metric http.server.request.duration (histogram, s) {http.request.method=GET "
            "http.response.status_code=200 http.route=/work/<int:i> url.scheme=http} count=3") in log, log
    assert [r for r in otlp.requests() if r["path"] == "/v1/metrics"] == []


def test_a_collector_refusing_metrics_is_told_once_and_never_taken_for_lost_spans(otlp):
    # The receiver answers 404 to an unknown path, as a collector without a
    # metrics pipeline does for /v1/metrics.
    env = env_for(otlp, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=otlp.endpoint + "/v1/nothing")
    with gunicorn(APP, env, workers=1) as server:
        for i in range(3):
            get(server, "/work/%d" % i)
            flush(server)
        otlp.wait_for_spans(lambda s: s["attributes"].get("http.route") == "/work/<int:i>", count=3)
        log = server.output()
    assert log.count("metrics export to %s/v1/nothing failed (HTTP 404" % otlp.endpoint) == 1, log
    assert "spans dropped" not in log and "export attempt" not in log, log
