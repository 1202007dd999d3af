"""HTTP routes: only the dev-only /test/ routes, when they are on."""

from django.conf import settings
from django.urls import path

from . import test_views

urlpatterns = []

if settings.TEST_ROUTES:
    urlpatterns += [
        path("test/token", test_views.token),
        path("test/push", test_views.push),
        path("test/pongs", test_views.pongs),
        path("test/outage", test_views.outage),
        path("test/close", test_views.close),
    ]
