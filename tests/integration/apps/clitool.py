"""Flask CLI commands and a plain script function under @trace_command."""
import sys

from flask import Flask

import tigerops

app = Flask(__name__)


@app.cli.command("nightly")
@tigerops.trace_command
def nightly():
    with tigerops.span("rebuild-index"):
        print("rebuilt")


@tigerops.trace_command(name="cleanup")
@app.cli.command("cleanup")
def cleanup():
    raise RuntimeError("disk full during cleanup")


@app.cli.command("quiet")
@tigerops.trace_command
def quiet():
    sys.exit(0)


@tigerops.trace_command
def main(argv):
    with tigerops.span("work"):
        return len(argv)


if __name__ == "__main__":
    main(sys.argv)
