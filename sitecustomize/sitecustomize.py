# TigerOps agent bootstrap. libtigerops.so puts this directory first on
# PYTHONPATH, so Python imports this file at start-up. It must never break
# the interpreter it runs in (any version, even Python 2): everything is
# guarded, and the user's own sitecustomize, if any, still runs after us.
import sys


def _tigerops_start():
    if sys.version_info < (3, 9):
        return
    try:
        from tigerops import _bootstrap
        _bootstrap.start()
    except Exception as exc:  # never take the host down
        try:
            sys.stderr.write("tigerops: agent not started: %r\n" % (exc,))
        except Exception:
            pass


def _tigerops_chain_user_sitecustomize():
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.get("sitecustomize")
    removed = [i for i, p in enumerate(sys.path) if os.path.abspath(p or ".") == here]
    for i in reversed(removed):
        del sys.path[i]
    del sys.modules["sitecustomize"]
    try:
        import sitecustomize  # noqa: F401  (the user's, found further down the path)
    except ImportError as exc:
        if getattr(exc, "name", "sitecustomize") != "sitecustomize":
            import traceback
            traceback.print_exc()
    except Exception:
        import traceback
        sys.stderr.write("Error in the user's sitecustomize (run under TigerOps):\n")
        traceback.print_exc()
    finally:
        for i in removed:
            sys.path.insert(i, here)
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours


_tigerops_start()
_tigerops_chain_user_sitecustomize()
