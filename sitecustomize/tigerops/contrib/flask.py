"""TigerOps for Flask, the code-first way:

    from tigerops.contrib.flask import TigerOps
    TigerOps(app)            # or: ext = TigerOps(); ext.init_app(app)

Under the preloaded agent this is a no-op for apps it already traces."""
from tigerops import _flask


class TigerOps:
    def __init__(self, app=None):
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        _flask.instrument_app(app)
        return self
