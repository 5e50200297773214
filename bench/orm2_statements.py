"""Benchmark: CPU per SQL statement for a SQLAlchemy 2.0 ORM query
(`session.scalars(select(Item).where(Item.id == 1))` on in-memory SQLite)
in a loop inside one Flask request, bare vs under the agent (OTLP export
on, every statement a span). Needs SQLAlchemy 2.0: run it with a venv's
python.

    /work/venvs/X/bin/python bench/orm2_statements.py [--prefix P] [--statements N] [--callgrind]

Same harness and output as bench/sqlite_statements.py."""
import sqlite_statements  # the same harness, this child program

CHILD = r"""
import sys, time
from flask import Flask
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

class Base(DeclarativeBase):
    pass

class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))

engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
with Session(engine) as s:
    s.add_all([Item(id=1, name="a"), Item(id=2, name="b")])
    s.commit()
app = Flask(__name__)
N = int(sys.argv[1])
STMT = select(Item).where(Item.id == 1)
result = {}

@app.route("/loop")
def loop():
    with Session(engine) as s:
        for i in range(200):
            s.scalars(STMT).all()
            s.expunge_all()
        t0 = time.process_time()
        for i in range(N):
            s.scalars(STMT).all()
            s.expunge_all()
        result["cpu"] = time.process_time() - t0
    return "ok"

app.test_client().get("/loop").close()
traced = "tigerops" in app.extensions
extra = 0.0
if traced:
    import tigerops
    t0 = time.process_time()
    tigerops.flush(30000)
    extra = time.process_time() - t0
print("RESULT", (result["cpu"] + extra) / N * 1e6, traced)
"""

if __name__ == "__main__":
    sqlite_statements.main(CHILD, "SQLAlchemy 2.0 ORM select() + in-memory SQLite")
