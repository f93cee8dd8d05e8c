"""Test settings: the same real PostgreSQL and Redis, faster hashing, mail in memory."""

from config import embedded
from config.env import env_str

from .base import *  # noqa: F403
from .base import CACHES

# Tests use database 15 of the default Redis, apart from a development instance on 0.
REDIS_URL = env_str("REDIS_URL") or embedded.redis_url_with_db(embedded.default_redis_url(), 15)
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
