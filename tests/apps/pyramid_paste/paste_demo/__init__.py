"""A minimal Pyramid application laid out as Pyramid's starter scaffold lays one out: a `main`
factory that PasteDeploy calls with the ini file's global and app settings."""
import logging
import os

from pyramid.config import Configurator

log = logging.getLogger(__name__)


def home(request):
    log.info("home view served %s", request.path)
    settings = request.registry.settings
    return {
        "greeting": settings.get("greeting"),
        "reload_templates": settings.get("pyramid.reload_templates"),
        "global_config": {k: v for k, v in request.registry.paste_global.items() if isinstance(v, str)},
        "path": request.path,
        "pid": os.getpid(),
    }


def main(global_config, **settings):
    """Returns the Pyramid WSGI application."""
    with Configurator(settings=settings) as config:
        config.add_route("home", "/")
        config.add_view(home, route_name="home", renderer="json")
        config.registry.paste_global = dict(global_config)
        return config.make_wsgi_app()
