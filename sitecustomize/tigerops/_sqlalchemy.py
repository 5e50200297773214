"""SQLAlchemy glue: every Engine, however created (create_engine,
engine_from_config, Flask-SQLAlchemy's lazy engines), gets the C statement
tracer on its dialect's execute methods."""
import _tigerops

# OpenTelemetry db.system.name values for SQLAlchemy dialect names.
_SYSTEMS = {"postgresql": "postgresql", "sqlite": "sqlite", "mysql": "mysql", "mariadb": "mariadb",
            "mssql": "microsoft.sql_server", "oracle": "oracle.db"}
_METHODS = (("do_execute", 0), ("do_execute_no_params", 1), ("do_executemany", 2))


def patch_engine_module(module):
    engine_class = module.Engine
    original_init = engine_class.__init__
    if getattr(original_init, "__tigerops__", False):
        return

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        try:
            instrument_engine(self)
        except Exception as exc:
            _tigerops.log(2, "could not instrument a SQLAlchemy engine: %r" % (exc,))

    __init__.__tigerops__ = True
    __init__.__wrapped__ = original_init
    engine_class.__init__ = __init__


def _connection_string(url):
    """The URL without its password: that never leaves the process."""
    try:
        # URL.set() treats None as "unchanged"; URL is a named tuple in 1.4.
        return url._replace(password=None).render_as_string(hide_password=True)
    except Exception:
        return ""


def instrument_engine(engine):
    dialect = engine.dialect
    if getattr(dialect, "_tigerops_instrumented", False):
        return
    url = engine.url
    system = _SYSTEMS.get(dialect.name, dialect.name)
    for name, mode in _METHODS:
        original = getattr(dialect, name)
        setattr(dialect, name, _tigerops.DbExecute(original, mode, system, str(url.database or ""),
                                                   str(url.host or ""), int(url.port or 0),
                                                   _connection_string(url)))
    dialect._tigerops_instrumented = True
