"""The Quick start demo: an ordinary Flask app with blueprints and one
hand-made span. Nothing here knows about the agent except `tigerops.span`."""
import time

from flask import Blueprint, Flask, jsonify

import tigerops

orders = Blueprint("orders", __name__, url_prefix="/orders")


@orders.route("/<int:order_id>")
def show_order(order_id):
    with tigerops.span("price-order", attributes={"order.id": order_id}):
        time.sleep(0.002)
    return jsonify(id=order_id, total=42)


@orders.route("/<int:order_id>/cancel", methods=["POST"])
def cancel_order(order_id):
    raise RuntimeError("cancellation service unavailable")


def create_app():
    app = Flask(__name__)

    @app.route("/health")
    def health():
        return "ok"

    app.register_blueprint(orders)
    return app


app = create_app()
