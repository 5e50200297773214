"""The Quick start demo: a small shop built the way Flask apps usually are.

An application factory, Flask-SQLAlchemy on SQLite, Flask-Caching on Redis,
a Celery task on a Redis broker that the worker runs inside the app context.
Nothing here knows about the agent: every span in the demo's output comes
from running this code under `tigerops-run`.

    SHOP_DB=/tmp/shop.db REDIS_URL=redis://127.0.0.1:6379/0 flask --app shop init-db
    tigerops-run gunicorn 'shop:create_app()'
    tigerops-run celery -A make_celery worker
"""
import os

from celery import Celery, Task, shared_task
from flask import Blueprint, Flask, abort, g, jsonify, request
from flask_caching import Cache
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
cache = Cache()
shop = Blueprint("shop", __name__)


class Customer(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)


class Product(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    price_cents = db.Column(db.Integer, nullable=False)
    stock = db.Column(db.Integer, nullable=False)


class Order(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customer.id"), nullable=False)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)
    status = db.Column(db.String(20), nullable=False, default="new")


class OutOfStock(Exception):
    pass


@shop.before_app_request
def load_customer():
    """Who is calling: the customer named by the X-Customer header."""
    g.customer = db.session.get(Customer, int(request.headers.get("X-Customer", "1")))


@shop.route("/health")
def health():
    return "ok"


@shop.route("/products/<int:product_id>")
def show_product(product_id):
    key = "product:%d" % product_id
    product = cache.get(key)
    if product is None:
        row = db.session.get(Product, product_id) or abort(404)
        product = {"id": row.id, "name": row.name, "price_cents": row.price_cents}
        cache.set(key, product, timeout=60)
    return jsonify(product)


@shop.route("/orders", methods=["POST"])
def place_order():
    body = request.get_json()
    product = db.session.get(Product, body["product_id"]) or abort(404)
    if product.stock < body["quantity"]:
        raise OutOfStock("%s: %d wanted, %d left" % (product.name, body["quantity"], product.stock))
    order = Order(customer_id=g.customer.id, product_id=product.id, quantity=body["quantity"])
    product.stock -= body["quantity"]
    db.session.add(order)
    db.session.commit()
    task = ship_order.delay(order.id)
    return jsonify(order=order.id, task=task.id), 201


@shared_task(ignore_result=False)
def ship_order(order_id):
    """Runs in the worker, inside the app context (FlaskTask below)."""
    order = db.session.get(Order, order_id)
    order.status = "shipped"
    db.session.commit()
    return order.status


def celery_init_app(app):
    """The Flask documentation's Celery pattern: tasks run in an app context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def create_app():
    app = Flask(__name__)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.environ.get("SHOP_DB", "/tmp/shop.db"),
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_url,
        CELERY=dict(broker_url=redis_url, result_backend=redis_url, task_default_queue="shop",
                    worker_hijack_root_logger=False),
    )
    db.init_app(app)
    cache.init_app(app)
    celery_init_app(app)
    app.register_blueprint(shop)

    @app.cli.command("init-db")
    def init_db():
        """Create the tables and a small catalogue."""
        db.drop_all()
        db.create_all()
        db.session.add_all([Customer(id=1, name="Ada"), Customer(id=2, name="Grace"),
                            Product(id=1, name="teapot", price_cents=2400, stock=10),
                            Product(id=2, name="kettle", price_cents=3900, stock=0)])
        db.session.commit()

    return app
