"""TigerOps for Flask, the code-first way:

    from tigerops.contrib.flask import TigerOps
    TigerOps(app)            # or: ext = TigerOps(); ext.init_app(app)

Under the preloaded agent this is a no-op for apps it already traces."""
from tigerops import _flask


class TigerOps:
    """excluded_urls: comma-separated regexes (or a list) searched in the
    full URL; matching requests get no span (health checks)."""

    def __init__(self, app=None, excluded_urls=None):
        self.excluded_urls = excluded_urls
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        _flask.instrument_app(app, excluded_urls=self.excluded_urls)
        return self
