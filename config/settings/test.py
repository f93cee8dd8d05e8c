"""Test settings: the same real PostgreSQL and Redis, faster hashing, mail in memory."""

import os
import sys

from config import embedded
from config.env import env_str

from .base import *  # noqa: F403
from .base import CACHES

# Tests use database 15 of the default Redis (or REDIS_URL's), apart from a development
# instance on 0, and database 13 for the `make run` instances some tests start
# (tests/processes.py side_redis_url). `make test` runs the suite in pytest-xdist workers: each
# has its own test database (pytest-django's _gw<N> suffix) and here its own pair of Redis
# databases, two below the previous worker's. Only the pytest worker itself shifts: the
# processes its tests start are handed its REDIS_URL (they do not import xdist).
REDIS_URL = env_str("REDIS_URL") or embedded.redis_url_with_db(embedded.default_redis_url(), 15)
TEST_SIDE_REDIS_DB = 13
if "xdist" in sys.modules and os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    _db = embedded.redis_db(REDIS_URL) - 2 * int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
    if _db < 1:
        raise RuntimeError(f"too many pytest-xdist workers for REDIS_URL's database ({REDIS_URL})")
    REDIS_URL = embedded.redis_url_with_db(REDIS_URL, _db)
    TEST_SIDE_REDIS_DB = _db - 1
CACHES["default"]["LOCATION"] = REDIS_URL

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Keep test keys apart from a running development instance on the same Redis.
CACHES["default"]["KEY_PREFIX"] = env_str("CACHE_KEY_PREFIX", "agentry-test")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
