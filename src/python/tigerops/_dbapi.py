"""DB-API drivers used without SQLAlchemy (sqlite3, psycopg2, psycopg 3,
pymysql; and the asyncio ones: psycopg 3's AsyncConnection, aiosqlite): each statement is one CLIENT span made in C by the same DbExecute
the SQLAlchemy glue uses (same attributes, same normaliser and cache).

The drivers' connect() is wrapped so the connection hands out cursors of a
subclass whose execute/executemany go through DbExecute. sqlite3 and
psycopg2 are C types that cannot be patched, hence subclasses passed as
their factories.

SQLAlchemy runs on these same drivers and already makes one span per
statement: a connection opened by SQLAlchemy (its dialect's connect, or a
creator= called from its pool) is left untouched, decided once per
connection by looking at the callers' modules, so statements through
SQLAlchemy pay nothing here and are never spanned twice."""
import sys
from time import perf_counter as _perf

import _tigerops

_getframe = sys._getframe
_classes = {}  # (cursor class, system, namespace, host, port) -> traced subclass


def _opened_by_sqlalchemy():
    """True when SQLAlchemy is among the few callers of connect(): its
    dialect's connect, or a creator= its pool calls."""
    try:
        frame = _getframe(2)
    except ValueError:
        return False
    for _ in range(6):
        if frame is None:
            return False
        if frame.f_globals.get("__name__", "").startswith("sqlalchemy."):
            return True
        frame = frame.f_back
    return False


def _generic_methods(execute, executemany):
    def traced_execute(self, query, *args, **kwargs):
        return execute(self, query, *args, **kwargs)

    def traced_executemany(self, query, *args, **kwargs):
        return executemany(self, query, *args, **kwargs)

    return traced_execute, traced_executemany


# The drivers' own signatures, spelled out: a *args/**kwargs pass-through
# costs about 1,000 instructions per statement more (callgrind).
def _sqlite_methods(execute, executemany):
    def traced_execute(self, sql, parameters=()):
        return execute(self, sql, parameters)

    def traced_executemany(self, sql, seq_of_parameters):
        return executemany(self, sql, seq_of_parameters)

    return traced_execute, traced_executemany


def _psycopg2_methods(execute, executemany):
    def traced_execute(self, query, vars=None):
        return execute(self, query, vars)

    def traced_executemany(self, query, vars_list):
        return executemany(self, query, vars_list)

    return traced_execute, traced_executemany


def _pymysql_methods(execute, executemany):
    def traced_execute(self, query, args=None):
        return execute(self, query, args)

    def traced_executemany(self, query, args):
        return executemany(self, query, args)

    return traced_execute, traced_executemany


_METHODS = {"sqlite3": _sqlite_methods, "psycopg2": _psycopg2_methods, "pymysql": _pymysql_methods}


def _traced_cursor_class(base, system, namespace, host, port):
    """A subclass of the driver's cursor class whose execute/executemany
    are DbExecute wrappers of the base methods, for one database."""
    key = (base, system, namespace, host, port)
    cls = _classes.get(key)
    if cls is not None:
        return cls
    if getattr(base, "_tigerops_traced", False):
        return base
    execute = _tigerops.DbExecute(base.execute, 0, system, namespace, host, port, "")
    executemany = _tigerops.DbExecute(base.executemany, 2, system, namespace, host, port, "")

    driver = _driver_of(base)
    traced_execute, traced_executemany = _METHODS.get(driver, _generic_methods)(execute, executemany)
    cls = type(base.__name__, (base,), {
        "__module__": base.__module__,
        "execute": traced_execute,
        "executemany": traced_executemany,
        "_tigerops_traced": True,
    })
    _classes[key] = cls
    return cls


def _driver_of(cls):
    """The package whose execute a cursor class runs (a user subclass that
    overrides it may have its own signature: then the generic pass-through)."""
    owner = next((k for k in cls.__mro__ if "execute" in k.__dict__), cls)
    return str(owner.__module__).partition(".")[0]


def _as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _port(value):
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _fail_open(what, exc):
    _tigerops.log(2, "could not trace a %s connection: %r" % (what, exc))


# --- sqlite3 ---------------------------------------------------------------

_sqlite_connections = {}  # user factory -> traced connection subclass


def _sqlite_connection_class(sqlite3, factory):
    cls = _sqlite_connections.get(factory)
    if cls is not None:
        return cls
    base_cursor = sqlite3.Cursor

    def cursor(self, factory=base_cursor):
        if isinstance(factory, type) and issubclass(factory, base_cursor):
            factory = _traced_cursor_class(factory, "sqlite", self._tigerops_db, "", 0)
        return factory_cursor(self, factory)

    # The C shortcuts create their cursor and run it without looking the
    # methods up: spell them out so they go through the traced cursor.
    def execute(self, sql, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, parameters):
        return self.cursor().executemany(sql, parameters)

    factory_cursor = factory.cursor
    cls = type(factory.__name__, (factory,), {"__module__": factory.__module__, "cursor": cursor,
                                              "execute": execute, "executemany": executemany,
                                              "_tigerops_db": ""})
    _sqlite_connections[factory] = cls
    return cls


def _wrap_sqlite_connect(sqlite3, original):
    def connect(database, *args, **kwargs):
        if _opened_by_sqlalchemy():
            return original(database, *args, **kwargs)
        try:
            factory = kwargs.get("factory", sqlite3.Connection)
            if len(args) >= 5:  # factory given by position (timeout, detect_types, isolation_level, check_same_thread, factory)
                factory = args[4]
            cls = _sqlite_connection_class(sqlite3, factory)
            if len(args) >= 5:
                args = args[:4] + (cls,) + args[5:]
            else:
                kwargs["factory"] = cls
        except Exception as exc:
            _fail_open("sqlite3", exc)
            return original(database, *args, **kwargs)
        conn = original(database, *args, **kwargs)
        try:
            conn._tigerops_db = _as_text(database)
        except Exception:
            pass
        return conn

    connect.__tigerops__ = True
    connect.__wrapped__ = original
    return connect


def patch_sqlite3(module):
    """module: sqlite3.dbapi2 (sqlite3 re-exports connect from it;
    SQLAlchemy calls sqlite3.dbapi2.connect)."""
    if getattr(module.connect, "__tigerops__", False):
        return
    import sqlite3
    module.connect = _wrap_sqlite_connect(module, module.connect)
    if sqlite3 is not module and getattr(sqlite3, "connect", None) is module.connect.__wrapped__:
        sqlite3.connect = module.connect


# --- psycopg2 --------------------------------------------------------------

_pg2_connections = {}


def _pg2_connection_class(base):
    cls = _pg2_connections.get(base)
    if cls is not None:
        return cls
    import psycopg2.extensions

    def cursor(self, *args, **kwargs):
        factory = kwargs.get("cursor_factory") or self.cursor_factory or psycopg2.extensions.cursor
        try:
            info = self._tigerops_info
            if info is None:
                info = self._tigerops_info = (_as_text(self.info.dbname), _as_text(self.info.host),
                                              _port(self.info.port))
            kwargs["cursor_factory"] = _traced_cursor_class(factory, "postgresql", *info)
        except Exception as exc:
            _fail_open("psycopg2", exc)
        return base_cursor(self, *args, **kwargs)

    base_cursor = base.cursor
    cls = type(base.__name__, (base,), {"__module__": base.__module__, "cursor": cursor,
                                        "_tigerops_info": None})
    _pg2_connections[base] = cls
    return cls


def patch_psycopg2(module):
    original = module.connect
    if getattr(original, "__tigerops__", False):
        return
    import psycopg2.extensions

    def connect(*args, **kwargs):
        if _opened_by_sqlalchemy():
            return original(*args, **kwargs)
        try:
            base = kwargs.get("connection_factory") or psycopg2.extensions.connection
            kwargs["connection_factory"] = _pg2_connection_class(base)
        except Exception as exc:
            _fail_open("psycopg2", exc)
        return original(*args, **kwargs)

    connect.__tigerops__ = True
    connect.__wrapped__ = original
    module.connect = connect


# --- psycopg 3 -------------------------------------------------------------

def _pg3_trace(conn):
    info = conn.info
    args = ("postgresql", _as_text(info.dbname), _as_text(info.host), _port(info.port))
    conn.cursor_factory = _traced_cursor_class(conn.cursor_factory, *args)
    conn.server_cursor_factory = _traced_cursor_class(conn.server_cursor_factory, *args)


def patch_psycopg(module):
    """psycopg.connect is Connection.connect (a classmethod): wrap the
    module's name, which is what applications and SQLAlchemy call."""
    original = module.connect
    if getattr(original, "__tigerops__", False):
        return

    def connect(*args, **kwargs):
        conn = original(*args, **kwargs)
        if _opened_by_sqlalchemy():
            return conn
        try:
            _pg3_trace(conn)
        except Exception as exc:
            _fail_open("psycopg", exc)
        return conn

    connect.__tigerops__ = True
    connect.__wrapped__ = original
    module.connect = connect
    if getattr(module, "Connection", None) is not None:
        # psycopg.Connection.connect(...) is the documented spelling too.
        cls_connect = module.Connection.__dict__.get("connect")
        if isinstance(cls_connect, classmethod) and not getattr(cls_connect.__func__, "__tigerops__", False):
            func = cls_connect.__func__

            def class_connect(cls, *args, **kwargs):
                conn = func(cls, *args, **kwargs)
                if _opened_by_sqlalchemy():
                    return conn
                try:
                    _pg3_trace(conn)
                except Exception as exc:
                    _fail_open("psycopg", exc)
                return conn

            class_connect.__tigerops__ = True
            class_connect.__wrapped__ = func
            module.Connection.connect = classmethod(class_connect)
            module.connect = module.Connection.connect
    if getattr(module, "AsyncConnection", None) is not None:
        try:
            _patch_psycopg_async(module)
        except Exception as exc:
            _fail_open("psycopg async", exc)


# --- pymysql ---------------------------------------------------------------

def patch_pymysql(module):
    original = module.connect
    if getattr(original, "__tigerops__", False):
        return

    def connect(*args, **kwargs):
        conn = original(*args, **kwargs)
        if _opened_by_sqlalchemy():
            return conn
        try:
            info = ("mysql", _as_text(conn.db), _as_text(conn.host), _port(conn.port))
            conn.cursorclass = _traced_cursor_class(conn.cursorclass, *info)
            base_cursor = conn.cursor

            def cursor(cursor=None):
                # conn.cursor(DictCursor): a class given per call.
                if cursor is not None:
                    cursor = _traced_cursor_class(cursor, *info)
                return base_cursor(cursor)

            conn.cursor = cursor
        except Exception as exc:
            _fail_open("pymysql", exc)
        return conn

    connect.__tigerops__ = True
    connect.__wrapped__ = original
    module.connect = module.Connect = connect


# --- asyncio drivers: psycopg 3 AsyncConnection, aiosqlite --------------------
# The statement is awaited, so the span is a Python block around the await
# (DbExecute times a synchronous call); it is made current only in the
# awaiting task's own context (the first event loop switched the process
# to contextvars). Same attributes as DbExecute's, from the same normaliser.

_ROWS_RETURNED = frozenset(("SELECT", "SHOW", "PRAGMA", "EXPLAIN", "VALUES", "TABLE", "WITH", "FETCH"))

# db.client.operation.duration of the statements DbExecute does not time
# (psycopg 3's async cursors), traced or not: the C instrument of the same
# name, the same attributes.
_db_duration = None
_shapes = {}          # query text -> (operation, collection)
_db_attributes = {}   # (info, shape, error.type) -> the attribute dict, made once
_CACHE_MAX = 1024


def _measure_statement(info, query, t0, exc):
    global _db_duration
    elapsed = _perf() - t0
    try:
        if _db_duration is None:
            from tigerops import _metrics
            _db_duration = _metrics.instrument("histogram", "db.client.operation.duration", "s",
                                               "Duration of database client operations", _metrics.DB_BOUNDARIES)
        shape = _shapes.get(query)
        if shape is None:
            _, op, table = _tigerops.sql_normalize(query) if isinstance(query, str) else ("", "", "")
            shape = (op.upper(), table)
            if len(_shapes) >= _CACHE_MAX:
                _shapes.clear()
            _shapes[query] = shape
        error = type(exc).__qualname__ if exc is not None else None
        key = (info, shape, error)
        attributes = _db_attributes.get(key)
        if attributes is None:
            system, namespace, host, port = info
            attributes = {"db.system.name": system}
            for name, value in (("db.namespace", namespace), ("db.operation.name", shape[0]),
                                ("db.collection.name", shape[1]), ("server.address", host),
                                ("server.port", port), ("error.type", error)):
                if value:
                    attributes[name] = value
            if len(_db_attributes) >= _CACHE_MAX:
                _db_attributes.clear()
            _db_attributes[key] = attributes
        _db_duration.record(elapsed, attributes)
    except Exception:
        pass


def _statement_span(info, query, batch):
    from tigerops import Span
    system, namespace, host, port = info
    text, op, table = _tigerops.sql_normalize(query)
    op = op.upper()
    attributes = {"db.system.name": system, "db.query.text": text}
    if namespace:
        attributes["db.namespace"] = namespace
    if op:
        attributes["db.operation.name"] = op
    if table:
        attributes["db.collection.name"] = table
    if host:
        attributes["server.address"] = host
    if port:
        attributes["server.port"] = port
    if batch is not None:
        attributes["db.operation.batch.size"] = batch
    name = ("%s %s" % (op, table)) if op and table else (op or system)
    return Span(name, _tigerops.KIND_CLIENT, attributes), op


def _record_rows(span, op, rowcount):
    if isinstance(rowcount, int) and rowcount >= 0:
        key = "db.response.returned_rows" if op in _ROWS_RETURNED else "db.response.affected_rows"
        span.set_attribute(key, rowcount)


def _batch_of(params):
    try:
        return len(params)
    except TypeError:  # an iterator: counting it would consume it
        return None


def _query_text(query, context):
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)  # psycopg.sql.Composable
    return as_string(context) if as_string is not None else None


def _text_or_none(query, cursor):
    try:
        return _query_text(query, cursor)
    except Exception:
        return None


_pg3_async_classes = {}


def _pg3_async_cursor_class(base, info):
    key = (base, info)
    cls = _pg3_async_classes.get(key)
    if cls is not None:
        return cls
    if getattr(base, "_tigerops_traced", False):
        return base
    base_execute, base_executemany = base.execute, base.executemany

    async def execute(self, query, *args, **kwargs):
        t0 = _perf()
        try:
            result = await traced_execute(self, query, *args, **kwargs)
        except BaseException as exc:
            _measure_statement(info, _text_or_none(query, self), t0, exc)
            raise
        _measure_statement(info, _text_or_none(query, self), t0, None)
        return result

    async def traced_execute(self, query, *args, **kwargs):
        if not _tigerops.tracing_now():
            return await base_execute(self, query, *args, **kwargs)
        try:
            span, op = _statement_span(info, _query_text(query, self), None)
        except Exception:
            return await base_execute(self, query, *args, **kwargs)
        with span:
            result = await base_execute(self, query, *args, **kwargs)
            _record_rows(span, op, self.rowcount)
        return result

    async def executemany(self, query, params_seq, *args, **kwargs):
        t0 = _perf()
        try:
            result = await traced_executemany(self, query, params_seq, *args, **kwargs)
        except BaseException as exc:
            _measure_statement(info, _text_or_none(query, self), t0, exc)
            raise
        _measure_statement(info, _text_or_none(query, self), t0, None)
        return result

    async def traced_executemany(self, query, params_seq, *args, **kwargs):
        if not _tigerops.tracing_now():
            return await base_executemany(self, query, params_seq, *args, **kwargs)
        try:
            span, op = _statement_span(info, _query_text(query, self), _batch_of(params_seq))
        except Exception:
            return await base_executemany(self, query, params_seq, *args, **kwargs)
        with span:
            result = await base_executemany(self, query, params_seq, *args, **kwargs)
            _record_rows(span, op, self.rowcount)
        return result

    cls = type(base.__name__, (base,), {"__module__": base.__module__, "execute": execute,
                                        "executemany": executemany, "_tigerops_traced": True})
    _pg3_async_classes[key] = cls
    return cls


def _pg3_async_trace(conn):
    info = conn.info
    args = ("postgresql", _as_text(info.dbname), _as_text(info.host), _port(info.port))
    conn.cursor_factory = _pg3_async_cursor_class(conn.cursor_factory, args)
    conn.server_cursor_factory = _pg3_async_cursor_class(conn.server_cursor_factory, args)


def _patch_psycopg_async(module):
    """psycopg.AsyncConnection.connect (an async classmethod): the
    connection it returns hands out traced cursors, unless SQLAlchemy's
    async dialect opened it (decided when connect is called, in its frame)."""
    cls_connect = module.AsyncConnection.__dict__.get("connect")
    if not isinstance(cls_connect, classmethod) or getattr(cls_connect.__func__, "__tigerops__", False):
        return
    func = cls_connect.__func__

    async def traced(opening):
        conn = await opening
        try:
            _pg3_async_trace(conn)
        except Exception as exc:
            _fail_open("psycopg async", exc)
        return conn

    def connect(cls, *args, **kwargs):
        opening = func(cls, *args, **kwargs)
        if _opened_by_sqlalchemy():
            return opening
        return traced(opening)

    connect.__tigerops__ = True
    connect.__wrapped__ = func
    module.AsyncConnection.connect = classmethod(connect)


# aiosqlite runs every call on a worker thread through Connection._execute;
# these are the ones that run SQL (the sqlite3 cursor underneath, traced by
# the sqlite3 glue, has no current span on that thread: no second span).
# (traced_*: the sqlite3 glue's cursor methods, what aiosqlite's Cursor calls.)
_AIOSQLITE_SQL = {"execute": False, "executemany": True, "_execute_insert": False, "_execute_fetchall": False,
                  "traced_execute": False, "traced_executemany": True}


def patch_aiosqlite(module):
    """module: aiosqlite.core."""
    original_connect = module.connect
    if getattr(original_connect, "__tigerops__", False):
        return
    if not callable(getattr(getattr(module, "Connection", None), "_execute", None)):
        _tigerops.log(2, "aiosqlite without Connection._execute: its statements are not traced")
        return

    def connect(database, *args, **kwargs):
        conn = original_connect(database, *args, **kwargs)
        try:
            conn._tigerops_info = None if _opened_by_sqlalchemy() else ("sqlite", _as_text(database), "", 0)
        except Exception as exc:
            _fail_open("aiosqlite", exc)
        return conn

    connect.__tigerops__ = True
    connect.__wrapped__ = original_connect
    module.connect = connect
    package = sys.modules.get("aiosqlite")
    if package is not None and getattr(package, "connect", None) is original_connect:
        package.connect = connect

    original_execute = module.Connection._execute

    async def _execute(self, fn, *args, **kwargs):
        info = getattr(self, "_tigerops_info", None)
        many = _AIOSQLITE_SQL.get(getattr(fn, "__name__", None))
        if info is None or many is None or not args or not _tigerops.tracing_now():
            return await original_execute(self, fn, *args, **kwargs)
        try:
            batch = _batch_of(args[1]) if many and len(args) > 1 else None
            span, op = _statement_span(info, _query_text(args[0], None), batch)
        except Exception:
            return await original_execute(self, fn, *args, **kwargs)
        with span:
            result = await original_execute(self, fn, *args, **kwargs)
            _record_rows(span, op, getattr(result, "rowcount", None))
        return result

    _execute.__tigerops__ = True
    _execute.__wrapped__ = original_execute
    module.Connection._execute = _execute
