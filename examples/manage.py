#manage.py
from flask import Flask
def create_app():
    app = Flask(__name__)

    @app.route("/")
    def index():
        return "Hello from Flask\n"

    return app
app = create_app()
if __name__ == '__main__':
    app.run(host='0.0.0.0', port=5001)
