"""Jinja2: a span per template render, named after the template."""
import _tigerops
from tigerops import Span


def patch_environment_module(module):
    template = module.Template
    original = template.render
    if getattr(original, "__tigerops__", False):
        return

    def render(self, *args, **kwargs):
        if not _tigerops.tracing_now():
            return original(self, *args, **kwargs)
        name = self.name or "<string>"
        with Span("render " + name, _tigerops.KIND_INTERNAL, {"jinja2.template.name": name}):
            return original(self, *args, **kwargs)

    render.__tigerops__ = True
    render.__wrapped__ = original
    template.render = render
