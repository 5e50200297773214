"""The instruments the metric sources record into, made once per name. The
aggregation is in C (_tigerops.metric); an extension without it (or a
failure making one) gives an instrument that records nothing, so the
glue calls record() unconditionally."""
import _tigerops

# Semantic-convention bucket boundaries (seconds).
HTTP_BOUNDARIES = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
DB_BOUNDARIES = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
MESSAGING_BOUNDARIES = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class _Off:
    __slots__ = ()

    def record(self, value, attributes=None):
        pass


OFF = _Off()
_made = {}


def instrument(kind, name, unit, description, boundaries=None):
    made = _made.get(name)
    if made is not None:
        return made
    make = getattr(_tigerops, "metric", None)
    if make is None or _tigerops.config_get("OTEL_METRICS_EXPORTER") == "none":
        return OFF  # not even a call into C per operation
    try:
        made = make(kind, name, unit, description, list(boundaries) if boundaries else None)
    except Exception as exc:  # fail open: the operation is simply not measured
        _tigerops.log(2, "could not make the metric %s: %r" % (name, exc))
        made = OFF
    _made[name] = made
    return made
