"""Flask + Flask-SQLAlchemy on ECHOES_DB_URL (SQLite or PostgreSQL), with
routes whose statements fail in ways that make the driver, the database
and SQLAlchemy echo bind values into the exception text. The planted
values are constants here, never in a URL, so the only way out of the
process for them is an exception text."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import exc, text

TOKEN = "sk_live_SECRET123"            # inserted twice into a UNIQUE column
NAME = "user-name-secret-bob"          # a second bind value of that insert
NOT_AN_ID = "sk_live_NOTANID456"       # a string where an integer goes
LITERAL = "sk_live_LITERAL789"         # a literal written into the SQL text
CAUGHT = "sk_live_CAUGHT000"           # a violation the view catches
HASH = "pbkdf2:sha256:600000$salt$deadbeefsecrethash"

db = SQLAlchemy()


class EchoAccount(db.Model):
    __tablename__ = "echo_accounts"
    id = db.Column(db.Integer, primary_key=True)
    token = db.Column(db.String(80), unique=True, nullable=False)
    name = db.Column(db.String(80))
    password_hash = db.Column(db.String(120))


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["ECHOES_DB_URL"]
db.init_app(app)
with app.app_context():
    db.drop_all()
    db.create_all()


def add_twice(token):
    for _ in range(2):
        db.session.add(EchoAccount(token=token, name=NAME, password_hash=HASH))
        db.session.commit()


@app.route("/health")
def health():
    return "ok"


@app.route("/unique")
def unique():
    add_twice(TOKEN)  # the second commit raises: an unhandled 500
    return "unreachable"


@app.route("/invalid")
def invalid():
    if db.engine.dialect.name == "postgresql":
        # psycopg2 interpolates the string: PostgreSQL echoes it with LINE n.
        db.session.execute(db.select(EchoAccount).where(EchoAccount.id == NOT_AN_ID)).all()
    else:
        # SQLite's "datatype mismatch": a string as the INTEGER PRIMARY KEY.
        db.session.add(EchoAccount(id=NOT_AN_ID, token="t-invalid", name=NAME, password_hash=HASH))
        db.session.commit()
    return "unreachable"


@app.route("/literal")
def literal():
    for _ in range(2):
        db.session.execute(text("INSERT INTO echo_accounts (token, name) VALUES ('%s', 'O''Brien')" % LITERAL))
        db.session.commit()
    return "unreachable"


@app.route("/caught")
def caught():
    try:
        add_twice(CAUGHT)
    except exc.IntegrityError as e:
        db.session.rollback()
        return "conflict: %s" % type(e.orig).__name__, 409
    return "unreachable"
