"""URLs of the B9 benchmark server: the product's URLs plus one hello-world view.

The hello-world view is the reference of B9: it goes through the same middleware stack
(sessions, authentication, CSP, the session timeout, axes…) on the same gunicorn as the
dashboard pages, but does no work of its own. It exists only here, never in product URLs.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as product_urlpatterns


def hello(request: HttpRequest) -> HttpResponse:
    """A trivial page for the logged-in user: Django's floor on this server."""
    return HttpResponse("Hello, world", content_type="text/plain")


urlpatterns = [path("bench/hello/", hello, name="bench_hello"), *product_urlpatterns]
