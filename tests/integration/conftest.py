import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent import LIB  # noqa: E402
from otlp import OtlpReceiver  # noqa: E402
from servers import Memcached, Postgres, RabbitMQ, RedisServer  # noqa: E402


# Tests that need no agent build (the receiver's own tests) run without one.
NO_AGENT_NEEDED = {"test_receiver.py", "test_grpc_receiver.py"}


def pytest_collection_finish(session):
    needs_agent = any(item.path.name not in NO_AGENT_NEEDED for item in session.items)
    if needs_agent and not os.path.exists(LIB):
        pytest.exit("libtigerops.so not found at %s: build and install first (tests/run-all.sh "
                    "does), or set TIGEROPS_TEST_PREFIX" % LIB, returncode=2)


@pytest.fixture
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def postgres():
    with Postgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def memcached():
    server = Memcached()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rabbitmq_booting():
    """A RabbitMQ node that may still be booting: a module asks for it early
    so that the boot overlaps its other tests."""
    with RabbitMQ(wait=False) as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq(rabbitmq_booting):
    rabbitmq_booting.wait_ready()
    return rabbitmq_booting
