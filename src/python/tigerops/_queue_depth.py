"""Celery queue depth: the number of messages waiting in each queue, as a
gauge, read from the broker by a daemon thread of its own.

Nothing here runs on a request or a task: the thread has its own broker
connection (never the app's pool, whose connections requests and the
worker's consumer wait on), every socket operation on it has a short
timeout, and a dead broker costs a warning logged once and an empty
observation. The thread starts in the Celery worker's main process (where
the queues it consumes live; TIGEROPS_CELERY_QUEUE_DEPTH=worker, the
default), or also in any process that publishes a task (=all), and never in
the prefork pool's children: one observer per worker, not one per child.

Redis: LLEN of the queue's list and of its priority lists (kombu's
"<queue>\\x06\\x16<step>" keys), in one pipelined round trip. RabbitMQ:
queue_declare(passive=True), whose message_count is what is ready to be
delivered. Other brokers: a warning, no gauge."""
import os
import threading

import _tigerops
from tigerops import _metrics

NAME = "tigerops.celery.queue.depth"
_DESCRIPTION = "Messages waiting in a Celery queue, read from the broker"
_SEP = "\x06\x16"  # kombu's redis transport: priority queue separator
_PRIORITY_STEPS = (0, 3, 6, 9)

_lock = threading.Lock()
_observer = None     # the running _Observer of this process, or None
_worker_main = False  # this process is a Celery worker's main process
_pool_child = False   # forked by a worker's main process: never observes
_warned = set()


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        _tigerops.log(2, message)


def _mode():
    return (_tigerops.config_get("TIGEROPS_CELERY_QUEUE_DEPTH") or "worker").lower()


def _interval_s():
    """OTEL_METRIC_EXPORT_INTERVAL (ms): one observation per export."""
    value = _tigerops.config_get("OTEL_METRIC_EXPORT_INTERVAL") or os.environ.get("OTEL_METRIC_EXPORT_INTERVAL")
    try:
        ms = int(value) if value else 60000
    except ValueError:
        ms = 60000
    return max(ms, 100) / 1000.0


def _extra_queues():
    names = _tigerops.config_get("TIGEROPS_CELERY_QUEUES") or ""
    return [n.strip() for n in names.split(",") if n.strip()]


def _first_url(url):
    if isinstance(url, (list, tuple)):
        url = url[0] if url else ""
    return str(url or "").split(";")[0].strip()


class _RedisProbe:
    def __init__(self, app, url, timeout):
        import redis
        options = dict(app.conf.broker_transport_options or {})
        if url.startswith("redis+socket://"):
            url = "unix://" + url[len("redis+socket://"):]
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           health_check_interval=0)
        prefix = options.get("global_keyprefix") or ""
        steps = options.get("priority_steps") or _PRIORITY_STEPS
        sep = options.get("sep") or _SEP
        self.keys_of = lambda q: [prefix + q] + ["%s%s%s%s" % (prefix, q, sep, s) for s in steps if s]

    def depths(self, queues):
        pipe = self.client.pipeline(transaction=False)
        spans = []
        for q in queues:
            keys = self.keys_of(q)
            for k in keys:
                pipe.llen(k)
            spans.append(len(keys))
        lengths = pipe.execute()
        out, i = {}, 0
        for q, n in zip(queues, spans):
            out[q] = sum(lengths[i:i + n])
            i += n
        return out

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass


class _AmqpProbe:
    def __init__(self, app, url, timeout):
        # connection_for_read: the app's broker settings (TLS, vhost,
        # transport options), with our own timeouts and no heartbeat.
        self.connection = app.connection_for_read(
            url, connect_timeout=timeout, heartbeat=0,
            transport_options={"read_timeout": timeout, "write_timeout": timeout})
        self.connection.connect()
        self.channel = None

    def depths(self, queues):
        from amqp.exceptions import NotFound
        out = {}
        for q in queues:
            if self.channel is None:
                self.channel = self.connection.channel()
            try:
                out[q] = self.channel.queue_declare(queue=q, passive=True).message_count
            except NotFound:
                out[q] = 0  # never declared: nothing waits in it (the server closed the channel)
                self.channel = None
        return out

    def close(self):
        try:
            self.connection.release()
        except Exception:
            pass


def _probe_for(app, timeout):
    url = _first_url(app.conf.broker_read_url or app.conf.broker_url)
    scheme = url.partition("://")[0].lower() if "://" in url else "amqp"
    if scheme in ("redis", "rediss", "redis+socket", "unix"):
        return _RedisProbe(app, url, timeout)
    if scheme in ("amqp", "amqps", "pyamqp"):
        return _AmqpProbe(app, url or None, timeout)
    _warn_once("scheme:" + scheme, "Celery queue depth is not observed on a %s broker (Redis and RabbitMQ only)"
               % scheme)
    return None


class _Observer(threading.Thread):
    def __init__(self, app, queues, interval):
        threading.Thread.__init__(self, name="tigerops-queue-depth", daemon=True)
        self.app, self.queues, self.interval = app, queues, interval
        self.timeout = min(2.0, interval / 2)
        self.stopped = threading.Event()
        self.gauge = _metrics.instrument("gauge", NAME, "{message}", _DESCRIPTION)
        self.attributes = {}  # queue -> its attribute dict, made once
        self.probe = None
        self.unsupported = False

    def queue_names(self):
        names = set(_extra_queues())
        try:
            names.update(list(self.queues.keys()))
        except RuntimeError:  # the app added a queue meanwhile: next time
            pass
        return sorted(n for n in names if isinstance(n, str) and n)

    def observe(self):
        if self.unsupported:
            return
        queues = self.queue_names()
        if not queues:
            return
        try:
            if self.probe is None:
                self.probe = _probe_for(self.app, self.timeout)
                if self.probe is None:
                    self.unsupported = True
                    return
            depths = self.probe.depths(queues)
        except Exception as exc:
            # A reconnection next time: a broker that comes back is observed again.
            _warn_once("broker", "Celery queue depth: the broker did not answer (%r); retrying every %gs"
                       % (exc, self.interval))
            if self.probe is not None:
                self.probe.close()
            self.probe = None
            return
        for queue, depth in depths.items():
            attributes = self.attributes.get(queue)
            if attributes is None:
                attributes = self.attributes[queue] = {"messaging.system": "celery",
                                                       "messaging.destination.name": queue}
            self.gauge.record(int(depth), attributes)

    def run(self):
        try:
            while True:
                self.observe()
                if self.stopped.wait(self.interval):
                    break
        except Exception as exc:  # never take anything else down
            _warn_once("thread", "Celery queue depth observer stopped: %r" % (exc,))
        finally:
            if self.probe is not None:
                self.probe.close()


def _start(app):
    global _observer
    if _pool_child or _observer is not None or app is None:
        return
    with _lock:
        if _observer is not None:
            return
        if _metrics.instrument("gauge", NAME, "{message}", _DESCRIPTION) is _metrics.OFF:
            return  # metrics are off: no thread, no broker connection
        try:
            queues = app.amqp.queues
        except Exception as exc:
            _warn_once("queues", "Celery queue depth: the app's queues are unknown (%r)" % (exc,))
            return
        _observer = _Observer(app, queues, _interval_s())
        _observer.start()


def worker_init():
    """In a worker's main process, before its pool forks."""
    global _worker_main
    _worker_main = True


def worker_ready(consumer):
    if _mode() in ("worker", "all"):
        _start(getattr(consumer, "app", None))


_publishers_observe = None  # TIGEROPS_CELERY_QUEUE_DEPTH=all, read at the first publish


def published():
    """After a publish (TIGEROPS_CELERY_QUEUE_DEPTH=all): the publishing app."""
    global _publishers_observe
    if _observer is not None or _pool_child:
        return
    if _publishers_observe is None:
        _publishers_observe = _mode() == "all"
    if not _publishers_observe:
        return
    try:
        from celery import current_app
        _start(current_app._get_current_object())
    except Exception as exc:
        _warn_once("app", "Celery queue depth: no current app (%r)" % (exc,))


def stop():
    observer = _observer
    if observer is not None:
        observer.stopped.set()


def _after_fork_in_child():
    # Threads do not survive a fork: a child observes only where it would
    # have started one itself (a publishing process under =all), never as a
    # worker's pool child.
    global _observer, _pool_child, _lock
    _observer = None
    _lock = threading.Lock()
    if _worker_main:
        _pool_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)
