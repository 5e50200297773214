"""A Celery-like job outside any web request: a plain asyncio program whose
tasks run concurrently on one SQLAlchemy async engine, inside a
tigerops.span() opened before the event loop starts."""
import asyncio
import os
import sys

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

import tigerops
from sqla2_models import Author, seed

seed(os.environ["SETUP_URL"])
engine = create_async_engine(os.environ["ASYNC_URL"])


async def task(i):
    with tigerops.span("task-%d" % i):
        async with engine.connect() as conn:
            await conn.execute(select(Author.name).where(Author.id == i + 1))
            await asyncio.sleep(0.01)  # the other tasks run their statements meanwhile
            if i == 2:
                try:
                    await conn.execute(text("SELECT no_such_column FROM authors2"))
                except Exception:
                    pass
            else:
                await conn.execute(select(Author.id).where(Author.id > i))


async def main():
    await asyncio.gather(*(task(i) for i in range(4)))
    await engine.dispose()


with tigerops.span("job"):
    asyncio.run(main())
sys.exit(0 if tigerops.flush(10000) else 1)
