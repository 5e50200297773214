"""SQLAlchemy glue: every Engine, however created (create_engine,
engine_from_config, Flask-SQLAlchemy's lazy engines, the sync engine inside
create_async_engine), gets the C statement tracer on its dialect's execute
methods. Async engines need nothing more: SQLAlchemy runs their dialect
methods in a greenlet that shares the awaiting task's context, so the
current span is the caller's in either concurrency model."""
import functools

import _tigerops

# OpenTelemetry db.system.name values for SQLAlchemy dialect names.
_SYSTEMS = {"postgresql": "postgresql", "sqlite": "sqlite", "mysql": "mysql", "mariadb": "mariadb",
            "mssql": "microsoft.sql_server", "oracle": "oracle.db"}
_METHODS = (("do_execute", 0), ("do_execute_no_params", 1), ("do_executemany", 2))


def patch_create_module(module):
    """Wraps sqlalchemy.engine.create.create_engine before the package
    re-exports it, so sqlalchemy.create_engine, engine_from_config and
    Flask-SQLAlchemy's lazy engines all go through it. (Engine.__init__ is
    not wrapped: create_engine reads its signature to route keyword
    arguments.)"""
    original = module.create_engine
    if getattr(original, "__tigerops__", False):
        return

    @functools.wraps(original)
    def create_engine(*args, **kwargs):
        engine = original(*args, **kwargs)
        try:
            instrument_engine(engine)
        except Exception as exc:
            _tigerops.log(2, "could not instrument a SQLAlchemy engine: %r" % (exc,))
        return engine

    create_engine.__tigerops__ = True
    module.create_engine = create_engine


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
    _count_insertmanyvalues_batches(dialect)
    dialect._tigerops_instrumented = True


def _count_insertmanyvalues_batches(dialect):
    """SQLAlchemy 2.0.10+ runs an executemany INSERT (with RETURNING, or
    the ORM's bulk insert) as pages of rows, each one do_execute of a
    multi-row statement: tell the tracer each page's row count
    (db.operation.batch.size). Older versions have no such method."""
    deliver = getattr(dialect, "_deliver_insertmanyvalues_batches", None)
    if deliver is None or not callable(deliver):
        return
    next_batch = dialect.do_execute.next_batch

    @functools.wraps(deliver)
    def batches(*args, **kwargs):
        for batch in deliver(*args, **kwargs):
            statement = getattr(batch, "replaced_statement", None)
            size = getattr(batch, "current_batch_size", 0)
            if statement is None or not isinstance(size, int):
                yield batch
                continue
            next_batch(statement, size)
            try:
                yield batch
            finally:
                next_batch(statement, 0)

    dialect._deliver_insertmanyvalues_batches = batches
