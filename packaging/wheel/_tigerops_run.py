"""The `tigerops-run` console script of a pip install: runs the C
tigerops-run shipped in the package, pointed at the libtigerops.so beside
it, so `tigerops-run gunicorn app:app` behaves as with the .deb/.rpm.
Imports nothing of tigerops: the wrapper must not load the agent itself."""
import os
import sys


def main():
    lib_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tigerops", "_lib")
    if not os.environ.get("TIGEROPS_LIBRARY"):
        os.environ["TIGEROPS_LIBRARY"] = os.path.join(lib_dir, "libtigerops.so")
    exe = os.path.join(lib_dir, "bin", "tigerops-run")
    try:
        os.execv(exe, ["tigerops-run"] + sys.argv[1:])
    except OSError as exc:
        sys.stderr.write("tigerops-run: cannot run %s: %s\n" % (exe, exc))
        return 126


if __name__ == "__main__":
    sys.exit(main())
