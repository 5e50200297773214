"""The product page's code-first factory: Flask-SQLAlchemy's engine exists
(db.init_app) before TigerOps(app), and nothing is preloaded."""
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

from tigerops.contrib.flask import TigerOps

db = SQLAlchemy()


class Item(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80))


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///:memory:"
    app.config["TIGEROPS_SERVICE_NAME"] = "code-first"
    db.init_app(app)
    with app.app_context():
        db.create_all()
    TigerOps(app)

    @app.route("/health")
    def health():
        return "ok"

    @app.route("/items")
    def items():
        db.session.add(Item(name="widget"))
        db.session.commit()
        return jsonify(n=len(db.session.execute(db.select(Item)).scalars().all()))

    return app


app = create_app()
