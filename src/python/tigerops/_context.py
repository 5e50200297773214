"""Chooses the concurrency model the C side keeps the current span in:
thread-locals (a few instructions) while every request has its own thread,
ContextVars once requests share a thread: gevent or eventlet monkey
patching (greenlets), async views (asgiref runs them in another thread
with the context copied), or an asyncio event loop started anywhere (a
Celery task or script running coroutines concurrently). Checked at start,
when a view is registered, before each app's first request, and when the
first event loop starts."""
import sys

import _tigerops

_CO_COROUTINE = 0x80


def _greenlets_patched():
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        try:
            if monkey.is_module_patched("threading") or monkey.is_module_patched("socket"):
                return "gevent"
        except Exception:
            pass
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        try:
            if patcher.is_monkey_patched("thread") or patcher.is_monkey_patched("socket"):
                return "eventlet"
        except Exception:
            pass
    return None


def _is_coroutine_view(view):
    func = getattr(view, "view_class", None) or view
    code = getattr(func, "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


def _has_async_views(app):
    return any(_is_coroutine_view(view) for view in list(getattr(app, "view_functions", {}).values()))


def note_view(view):
    """A view being registered: an async one switches now (never back)."""
    if not _tigerops.context_mode() and _is_coroutine_view(view):
        _tigerops.set_context_mode(True)
        _tigerops.log(3, "async views: the current span follows greenlets and coroutines (contextvars)")


def choose(app=None):
    """Switches to ContextVars when this process needs them (never back)."""
    if _tigerops.context_mode():
        return
    reason = _greenlets_patched()
    if reason is None and app is not None and _has_async_views(app):
        reason = "async views"
    if reason is not None:
        _tigerops.set_context_mode(True)
        _tigerops.log(3, "%s: the current span follows greenlets and coroutines (contextvars)" % reason)


def watch_event_loops(events):
    """asyncio.events: every event loop sets itself running through
    events._set_running_loop (looked up at each call by base_events), so
    the first one to start switches to ContextVars: tasks interleave on
    one thread, and each task has its own context. One-shot: the original
    is put back. A loop started inside an open span block still sees that
    span (the C side falls back to the thread-local)."""
    original = events._set_running_loop
    if getattr(original, "__tigerops__", False):
        return

    def _set_running_loop(loop):
        if loop is not None:
            if events._set_running_loop is _set_running_loop:
                events._set_running_loop = original
            if not _tigerops.context_mode():
                _tigerops.set_context_mode(True)
                _tigerops.log(3, "asyncio event loop: the current span follows tasks (contextvars)")
        return original(loop)

    _set_running_loop.__tigerops__ = True
    _set_running_loop.__wrapped__ = original
    events._set_running_loop = _set_running_loop
