"""Settings of every benchmark process (the runner, web servers, workers, beat).

The development settings with what a benchmark needs on top, and nothing that changes how
the platform itself works: DEBUG off (Django keeps every query of a request in memory with
it on), the bench's Celery tasks (the no-op and sleeping baselines, the cron probe) imported
by the workers, the bench's tool port (the real ``DatabaseToolPort`` with one in-process tool
registered), and limits that are conveniences (API throttle, the per-agent tool-call guard)
raised so a load test measures the platform rather than the guard.
"""

from config.env import env_str
from config.settings.dev import *  # noqa: F403
from config.settings.dev import LOGGING, REST_FRAMEWORK

DEBUG = False
CELERY_IMPORTS = ("bench.tasks", "bench.worker_probe")
AGENTRY_TOOL_PORT = env_str("AGENTRY_TOOL_PORT", "bench.tooling.BenchToolPort")
# A runaway-loop guard of 120 tool calls per agent per minute: a benchmark agent makes
# thousands a minute on purpose.
AGENTRY_AGENT_TOOL_CALLS_PER_MINUTE = 100_000_000
# 1,200 requests a minute per token is a convenience for real clients; the load clients send
# more. The throttle itself still runs (one cache read and write per request).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": env_str("API_THROTTLE_RATE", "100000/min")}
# Warnings and errors only: a JSON line per task or request is work the baselines do not do.
LOGGING["root"]["level"] = env_str("LOG_LEVEL", "WARNING")
