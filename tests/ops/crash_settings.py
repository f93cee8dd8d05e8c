"""``make run``'s settings (config.settings.dev, DEBUG as make run sets it) with two views
that raise, for tests/ops/test_serve_errors.py. Never used outside the tests."""

from config.settings.dev import *  # noqa: F403

ROOT_URLCONF = "tests.ops.crash_urls"
