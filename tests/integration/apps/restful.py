"""Hooks (app and blueprint), a MethodView and a Flask-RESTful resource
with reqparse and marshal_with."""
from flask import Blueprint, Flask, g
from flask.views import MethodView
from flask_restful import Api, Resource, abort, fields, marshal_with, reqparse

app = Flask(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")


@app.before_request
def load_user():
    g.user = "u"


@bp.before_request
def require_admin():
    g.admin = True


@app.after_request
def add_header(response):
    response.headers["X-Traced"] = "1"
    return response


@app.teardown_request
def close_session(exc):
    pass


class ItemView(MethodView):
    def get(self, item_id):
        return {"id": item_id}

    def delete(self, item_id):
        return "", 204


bp.add_url_rule("/items/<int:item_id>", view_func=ItemView.as_view("item"))

parser = reqparse.RequestParser()
parser.add_argument("limit", type=int, location="args", default=10)
todo_fields = {"id": fields.Integer, "task": fields.String}


class TodoList(Resource):
    @marshal_with(todo_fields)
    def get(self):
        args = parser.parse_args()
        return [{"id": i, "task": "t%d" % i} for i in range(args["limit"])]


class Todo(Resource):
    def get(self, todo_id):
        abort(404, message="todo %d does not exist" % todo_id)


api = Api(app)
api.add_resource(TodoList, "/todos")
api.add_resource(Todo, "/todos/<int:todo_id>")
app.register_blueprint(bp)


@app.route("/health")
def health():
    return "ok"
