"""enduser.id on the request span from Flask-Login, when
TIGEROPS_CAPTURE_USER is on (personal data: off by default). Read at the
end of the request from where Flask-Login keeps the user it loaded; a user
the app never asked for is never loaded by us (that could be a query)."""
import _tigerops

_warned = False


_legacy = False  # Flask-Login before 0.6.2 keeps the user on the request context


def _loaded_user():
    """The user Flask-Login loaded in this request, or None."""
    from flask import g
    user = g.get("_login_user")
    if user is not None or not _legacy:
        return user
    import flask.globals
    names = vars(flask.globals)  # no module __getattr__: no deprecation warning
    proxy = names.get("request_ctx")  # Flask 2.2+
    if proxy is not None:
        ctx = proxy._get_current_object()
    else:
        stack = names.get("_request_ctx_stack")  # Flask < 2.2, where it is not deprecated
        ctx = stack.top if stack is not None else None
    return vars(ctx).get("user") if ctx is not None and hasattr(ctx, "__dict__") else None


def _record_user(exc=None):
    global _warned
    span = _tigerops.request_span()
    if span is None or not span.is_recording():
        return
    try:
        user = _loaded_user()
        if user is None or not user.is_authenticated:
            return
        user_id = user.get_id()
        if user_id is not None:
            span.set_attribute("enduser.id", str(user_id))
    except Exception as e:  # the app's user class may do anything; the request goes on
        if not _warned:
            _warned = True
            _tigerops.log(2, "enduser.id not recorded: %r" % (e,))


_record_user.__tigerops__ = True  # not a hook span of its own


def install(app):
    """At the app's first request (app.config applied): only when the
    setting is on does any request pay for it."""
    global _legacy
    if _tigerops.config_get("TIGEROPS_CAPTURE_USER") != "true":
        return
    import sys
    login_manager = sys.modules.get("flask_login.login_manager")
    if login_manager is None:  # an app using Flask-Login has imported it by its first request
        return
    store = getattr(login_manager.LoginManager, "_update_request_context_with_user", None)
    _legacy = "_login_user" not in getattr(getattr(store, "__code__", None), "co_names", ("_login_user",))
    funcs = app.teardown_request_funcs.setdefault(None, [])
    if _record_user not in funcs:
        # Teardown functions run last-registered first: at index 0 this runs
        # after the app's own, which may still touch current_user.
        funcs.insert(0, _record_user)
