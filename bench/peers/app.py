"""The app every agent runs: a hello route and a realistic one (3 ORM
queries on a SQLite file, a Jinja2 template, a Redis GET).

Settings come from the environment: PEERS_DB (SQLite file, made by
`python app.py init PATH`), PEERS_REDIS (redis URL). Sentry's SDK has no
zero-code launcher: it is set up in code, as its documentation says, when
PEERS_SENTRY_DSN is set (PEERS_SAMPLE_RATE is its traces_sample_rate)."""
import os
import sys

import redis
from flask import Flask, render_template
from sqlalchemy import ForeignKey, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

if os.environ.get("PEERS_SENTRY_DSN"):
    import sentry_sdk
    sentry_sdk.init(dsn=os.environ["PEERS_SENTRY_DSN"],
                    traces_sample_rate=float(os.environ.get("PEERS_SAMPLE_RATE", "1.0")),
                    # The default queue (100 envelopes, one per transaction) drops
                    # transactions under a tight loop: exporting them all is the
                    # comparison the other agents get.
                    transport_queue_size=100000)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(100))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    item: Mapped[str] = mapped_column(String(50))
    amount: Mapped[float]


app = Flask(__name__)
engine = create_engine("sqlite:///" + os.environ.get("PEERS_DB", "/tmp/peers.db"))
cache = redis.Redis.from_url(os.environ.get("PEERS_REDIS", "redis://127.0.0.1:6379/0"))


@app.route("/hello/<name>")
def hello(name):
    return "hello " + name


@app.route("/realistic")
def realistic():
    with Session(engine) as session:
        user = session.get(User, 1)
        orders = session.scalars(select(Order).where(Order.user_id == user.id).order_by(Order.id).limit(10)).all()
        total = session.scalar(select(func.count(Order.id)).where(Order.user_id == user.id))
        greeting = cache.get("greeting") or b""
        return render_template("page.html", user=user, orders=orders, total=total, greeting=greeting.decode())


def init(path):
    if os.path.exists(path):
        os.unlink(path)
    eng = create_engine("sqlite:///" + path)
    Base.metadata.create_all(eng)
    with Session(eng) as session:
        session.add_all([User(id=i, name="user%d" % i, email="user%d@example.com" % i) for i in range(1, 11)])
        session.add_all([Order(user_id=1 + i % 10, item="item %d" % i, amount=i * 1.25) for i in range(500)])
        session.commit()


if __name__ == "__main__" and sys.argv[1:2] == ["init"]:
    init(sys.argv[2])
