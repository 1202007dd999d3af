"""Settings of the Chanx test server.

Everything lives in memory or in a temporary directory: SQLite under
``CHANX_DATA_DIR`` (scripts/chanx-server gives each run a fresh one) and
Channels' in-memory layer, so one daphne process is the whole server.
"""

import os
import tempfile
from pathlib import Path

DATA_DIR = Path(os.environ.get("CHANX_DATA_DIR") or tempfile.mkdtemp(prefix="chanx-"))

SECRET_KEY = "chanx-test-server-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# The dev-only routes under /test/ (users and tokens, pushes, fault switches).
# scripts/chanx-server turns them on; a deployment would never.
TEST_ROUTES = os.environ.get("CHANX_TEST_ROUTES") == "1"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "chanx.channels",
    "chanxapp",
]

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]

ROOT_URLCONF = "chanxapp.urls"
ASGI_APPLICATION = "chanxapp.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

# Chanx's defaults, spelled out: the authenticator sends its result frame,
# no "complete" frame follows each handled message, snake_case keys.
CHANX = {
    "SEND_AUTHENTICATION_MESSAGE": True,
    "SEND_COMPLETION": False,
    "CAMELIZE": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # daphne's "Listening on TCP address HOST:PORT" is how the port is learnt.
    "loggers": {"daphne.server": {"level": "INFO"}},
}
