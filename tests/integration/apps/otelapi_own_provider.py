"""An app that sets its own TracerProvider (as one configuring the
OpenTelemetry SDK does): the agent must not fight it."""
from flask import Flask, jsonify
from opentelemetry import trace

tracer = trace.get_tracer(__name__)  # obtained before the provider is set
trace.set_tracer_provider(trace.NoOpTracerProvider())
app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/own")
def own():
    with tracer.start_as_current_span("should-not-be-ours") as span:
        return jsonify(provider=type(trace.get_tracer_provider()).__name__, span=type(span).__name__,
                       recording=span.is_recording())
