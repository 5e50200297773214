"""A Flask-RESTX API on a blueprint (/api) with a namespace (/todos): a
model validated with expect(validate=True), marshal_with, a reqparse
parser, a 404 through ns.abort, a failing resource and the Swagger spec."""
from flask import Blueprint, Flask
from flask_restx import Api, Resource, fields, reqparse

app = Flask(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
api = Api(bp, version="1.0", title="Todos", doc="/doc/")
ns = api.namespace("todos", description="todo items")

todo = ns.model("Todo", {
    "id": fields.Integer(readonly=True),
    "task": fields.String(required=True, min_length=1),
})
parser = reqparse.RequestParser()
parser.add_argument("limit", type=int, location="args", default=2)
TODOS = {1: {"id": 1, "task": "a"}, 2: {"id": 2, "task": "b"}, 3: {"id": 3, "task": "c"}}


@ns.route("/")
class TodoList(Resource):
    @ns.marshal_list_with(todo)
    def get(self):
        args = parser.parse_args()
        return list(TODOS.values())[:args["limit"]]

    @ns.expect(todo, validate=True)
    @ns.marshal_with(todo, code=201)
    def post(self):
        item = {"id": max(TODOS) + 1, "task": api.payload["task"]}
        return item, 201


@ns.route("/<int:todo_id>")
class Todo(Resource):
    @ns.marshal_with(todo)
    def get(self, todo_id):
        if todo_id not in TODOS:
            ns.abort(404, "todo %d does not exist" % todo_id)
        return TODOS[todo_id]

    def delete(self, todo_id):
        raise RuntimeError("the todo store is read-only")


app.register_blueprint(bp)


@app.route("/health")
def health():
    return "ok"
