"""Flask-SQLAlchemy 3: the engine is created lazily, inside the app context."""
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.String(80))


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///:memory:"
    db.init_app(app)

    @app.route("/health")
    def health():
        return "ok"

    @app.route("/notes")
    def notes():
        db.create_all()
        db.session.add(Note(body="note-SECRET"))
        db.session.commit()
        return jsonify(n=db.session.execute(db.select(Note).filter_by(body="note-SECRET")).scalars().all().__len__())

    return app


app = create_app()
