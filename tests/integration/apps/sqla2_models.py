"""SQLAlchemy 2.0 declarative models and seed data shared by the 2.0 test
apps (sync and async engines on the same schema)."""
from sqlalchemy import ForeignKey, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors2"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list["Book"]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books2"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors2.id"))
    author: Mapped[Author] = relationship(back_populates="books")


def seed(url):
    """Fresh tables with six authors, one book each (a sync engine: runs
    at import, before any event loop)."""
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        for i in range(6):
            s.add(Author(id=i + 1, name="secret-author-%d" % (i + 1),
                         books=[Book(title="secret-title-%d" % (i + 1))]))
        s.commit()
    engine.dispose()
