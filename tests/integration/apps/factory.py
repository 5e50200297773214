"""An application factory that registers blueprints after creating the app,
and imports Flask before anything else."""
from flask import Flask, Blueprint, jsonify

api = Blueprint("api", __name__, url_prefix="/api")


@api.route("/users/<int:uid>")
def get_user(uid):
    return jsonify(id=uid)


def create_app():
    app = Flask(__name__)

    @app.route("/health")
    def health():
        return "ok"

    app.register_blueprint(api)
    return app


app = create_app()
