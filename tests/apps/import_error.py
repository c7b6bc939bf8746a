import this_module_does_not_exist_anywhere  # noqa: F401


def app(environ, start_response):
    start_response("200 OK", [])
    return [b""]
