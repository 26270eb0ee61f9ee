"""GIU EV settings, read from the environment with django-environ.

With no environment set the portal runs embedded: an SQLite file under
``var/``, an in-memory channel layer and Celery tasks run in-process. Setting
``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` turns on the production
set-up. A value that cannot be read stops start-up with a message that names
the variable.
"""

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")


def _read(name: str, reader, default):
    """Read one variable; a value that does not parse names the variable."""
    try:
        return reader(name, default=default)
    except (ValueError, TypeError, KeyError, environ.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(
            f"Environment variable {name} is invalid: {exc}"
        ) from exc


_BOOL_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
    "": False,
}


def _bool(name: str, default: bool) -> bool:
    """A yes/no variable; anything but the usual words is a start-up error."""
    raw = env.str(name, default=None)
    if raw is None:
        return default
    try:
        return _BOOL_WORDS[raw.strip().lower()]
    except KeyError:
        raise ImproperlyConfigured(
            f"Environment variable {name} is invalid: {raw!r} is not true/false"
        ) from None


def _secret(name: str, default: str | None = None) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE cannot be read: {exc}") from exc
    return env.str(name, default=default)


# --- Core ----------------------------------------------------------------------

DEBUG = _bool("DEBUG", False)
VAR_DIR = Path(_read("GIU_VAR_DIR", env.str, str(BASE_DIR / "var")))

SECRET_KEY = _secret("SECRET_KEY")
if not SECRET_KEY:
    # Embedded use: one random key per checkout, kept out of git under var/.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "giu_ev.apps.GiuEvConfig",
    "stations",
    "sessions.apps.ChargingConfig",
    "forecasting",
    "ocpp_bridge",
    "api_access",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # /healthz, /readyz and /metrics, answered before the Host header check.
    "giu_ev.health.probe_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "api_access.ratelimits.ApiAddressLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "giu_ev.urls"
WSGI_APPLICATION = "giu_ev.wsgi.application"
ASGI_APPLICATION = "giu_ev.asgi.application"

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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database --------------------------------------------------------------------
# PostgreSQL through psycopg 3 with Django's connection pool. Persistent
# connections (CONN_MAX_AGE) must stay off under ASGI: each request runs in its
# own thread and would keep its own connection until the server runs out.

DATABASE_URL = _read("DATABASE_URL", env.str, "")
if DATABASE_URL:
    try:
        _db = env.db_url_config(DATABASE_URL)
    except Exception as exc:  # django-environ raises several types here
        raise ImproperlyConfigured(f"DATABASE_URL is invalid: {exc}") from exc
    if _db.get("ENGINE") not in {
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    }:
        raise ImproperlyConfigured(
            "DATABASE_URL is invalid: expected postgres://... or sqlite:///..."
        )
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["CONN_MAX_AGE"] = 0
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": _read("DATABASE_POOL_MIN", env.int, 2),
            "max_size": _read("DATABASE_POOL_MAX", env.int, 20),
            "timeout": 10,
        }
        # A database host that drops packets must fail /readyz and requests in
        # seconds, not after the kernel's TCP timeout of about two minutes.
        _db["OPTIONS"].setdefault(
            "connect_timeout", _read("DATABASE_CONNECT_TIMEOUT_S", env.int, 5)
        )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "giu_ev.sqlite3",
        # WAL lets the pages read while the import or a charger writes.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
_test_db_name = _read("DATABASE_TEST_NAME", env.str, "")
if _test_db_name:
    _db["TEST"] = {"NAME": _test_db_name}
# django-prometheus' wrappers of the same engines count connections, queries,
# errors and query time (django_db_*). They subclass Django's backends, so the
# psycopg pool and the SQLite options above work unchanged.
_db["ENGINE"] = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}[_db["ENGINE"]]
DATABASES = {"default": _db}

# --- Redis: cache, channel layer, Celery -------------------------------------------

REDIS_URL = _read("REDIS_URL", env.str, "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        "REDIS_URL is invalid: expected redis://, rediss:// or unix://"
    )

# Redis connections one process may open for the channel layer; Redis accepts
# 10,000 clients by default, so four busy processes fit.
CHANNEL_LAYER_MAX_CONNECTIONS = _read("CHANNEL_LAYER_MAX_CONNECTIONS", env.int, 2000)
# Connecting to a stopped or unreachable Redis gives up after this long, so that
# /readyz reports it within a second and requests do not hang on the cache.
REDIS_CONNECT_TIMEOUT_S = _read("REDIS_CONNECT_TIMEOUT_S", env.float, 0.5)
# The channel layer connects more patiently: a burst of 150 remote commands on
# a loaded 2-core machine saw connects take over 0.5 s, and a command that
# fails to connect is lost to its caller. /readyz bounds its own channel-layer
# check in time, so a stopped Redis is still reported within a second.
CHANNEL_LAYER_CONNECT_TIMEOUT_S = _read(
    "CHANNEL_LAYER_CONNECT_TIMEOUT_S", env.float, 5.0
)

if REDIS_URL:
    CACHES = {
        "default": {
            # Django's own Redis cache, counted by django-prometheus
            # (django_cache_get_total, hits, misses, failures), sharing one
            # redis-py client per process (giu_ev/cache.py says why).
            "BACKEND": "giu_ev.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
                "socket_timeout": 5,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times out reads after 5 s by default, the same
                # 5 s channels_redis blocks in BZPOPMIN waiting for a message:
                # an idle consumer then crashed with TimeoutError and dropped
                # its charger's socket. Reads may take longer than that block.
                # redis-py 8 also caps a pool at 100 connections and raises at
                # once past that: 300 chargers connecting together (each
                # holding a connection per group operation in flight) lost 20
                # sockets that way in the e2e load test.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": CHANNEL_LAYER_CONNECT_TIMEOUT_S,
                        "max_connections": CHANNEL_LAYER_MAX_CONNECTIONS,
                    }
                ],
                # A burst of remote commands or live events must wait, not be
                # dropped: the default capacity of 100 per channel was seen to
                # drop events when a site of 50 chargers sends MeterValues at once.
                "capacity": 1500,
                "expiry": 60,
                "group_expiry": 86400,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S}
# The worker serves its own counters (giu_celery_*) on this port: its tasks run
# in other processes than the web servers, so their /metrics cannot hold them.
# 0 = off.
# See giu_ev/celery_metrics.py and docs/deploy.md.
WORKER_METRICS_PORT = _read("WORKER_METRICS_PORT", env.int, 9808)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Static entries; beat copies them into django-celery-beat's tables at start.
CELERY_BEAT_SCHEDULE = {
    "site-silence-check": {
        "task": "stations.tasks.site_silence_check",
        "schedule": 60.0,
    },
    "retrain-overdue-check": {
        "task": "giu_ev.tasks.retrain_overdue_check",
        "schedule": 3600.0,
    },
}

# --- Auth, sessions, security --------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"  # noqa: E501
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Production (REDIS_URL set, DEBUG off) sits behind a TLS-terminating proxy that
# sets X-Forwarded-Proto; every SECURE_* default below is then the safe one and
# `manage.py check --deploy` is clean. The embedded default (`make run`, plain
# HTTP on 127.0.0.1) keeps them off. Each can be set on its own.
_PRODUCTION = not DEBUG and bool(REDIS_URL)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", _PRODUCTION)
# Probes and Prometheus reach the pods over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", _PRODUCTION)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)
# One year, the value HSTS preload lists ask for. The preload flag alone adds
# no domain to browser lists: the domain's owner submits it there.
SECURE_HSTS_SECONDS = _read(
    "SECURE_HSTS_SECONDS", env.int, 31_536_000 if _PRODUCTION else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _PRODUCTION)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", _PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Time and language ---------------------------------------------------------------

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
TIME_ZONE = _read("TIME_ZONE", env.str, "UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(f"TIME_ZONE is invalid: {TIME_ZONE!r}") from exc

# --- Static files ---------------------------------------------------------------------

STATIC_URL = "static/"
# Front-end libraries come from npm (package.json) and are served as they ship.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STATIC_ROOT = Path(_read("STATIC_ROOT", env.str, str(BASE_DIR / "var" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(_read("MEDIA_ROOT", env.str, str(VAR_DIR / "media")))

# --- Logging ------------------------------------------------------------------

# One configuration for Daphne, the Celery worker and beat, all to stderr:
# LOG_FORMAT=json gives JSON lines for a log shipper (the production default),
# text gives readable lines. Records carry the ids of the charger, session and
# model they concern (giu_ev/log.py) and pass a filter that masks secrets.
LOG_LEVEL = _read("LOG_LEVEL", env.str, "INFO").upper()
LOG_FORMAT = _read("LOG_FORMAT", env.str, "json" if _PRODUCTION else "text").lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context_ids": {"()": "giu_ev.log.ContextIdsFilter"},
        "mask_secrets": {"()": "giu_ev.log.SecretMaskFilter"},
    },
    "formatters": {
        "json": {"()": "giu_ev.log.JsonLinesFormatter"},
        "text": {"()": "giu_ev.log.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context_ids", "mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
# Celery would replace the root logger's handlers with its own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Health and metrics ----------------------------------------------------------

# Each /readyz check gives up after this long; they run at once, so /readyz
# answers within about a second even when a dependency hangs (the Kubernetes
# probes allow 2 s).
HEALTH_CHECK_TIMEOUT_S = _read("HEALTH_CHECK_TIMEOUT_S", env.float, 0.8)
# /metrics is for Prometheus scraping the processes directly; a request that
# came through the public proxy (X-Forwarded-For set) gets a 404.
METRICS_REFUSE_PROXIED = _bool("METRICS_REFUSE_PROXIED", True)
# The gauges read from the database at each scrape (chargers, connectors,
# sessions, forecast error, time since retrain) are the same in every process,
# so one tier exports them: the http tier (gunicorn) in production, whose
# workers are made for such sync work; the web tier (Daphne) sets this to 0 in
# docker-compose.yml and deploy/k8s. On by default: `make run`'s single Daphne
# process exports everything. See giu_ev/exposition.py.
METRICS_DOMAIN_GAUGES = _bool("METRICS_DOMAIN_GAUGES", True)

# --- E-mail and alerts ----------------------------------------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@mail.example:587 (django-environ);
# without it Django's default applies (SMTP on localhost:25).

_email_url = _secret("EMAIL_URL")
if _email_url:
    try:
        globals().update(env.email_url_config(_email_url))
    except Exception as exc:  # django-environ raises several types here
        raise ImproperlyConfigured("EMAIL_URL is invalid") from exc
# An SMTP server that does not answer must not hold up the caller for long.
EMAIL_TIMEOUT = _read("EMAIL_TIMEOUT_S", env.int, 10)
DEFAULT_FROM_EMAIL = _read("DEFAULT_FROM_EMAIL", env.str, "giu-ev@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Alerts are mailed when opened to ALERT_EMAIL_TO (comma-separated), and to
# every active staff user with an e-mail address when ALERT_EMAIL_STAFF is on.
ALERT_EMAIL_TO = _read("ALERT_EMAIL_TO", env.list, [])
ALERT_EMAIL_STAFF = _bool("ALERT_EMAIL_STAFF", False)
ALERT_EMAIL_MIN_SEVERITY = _read("ALERT_EMAIL_MIN_SEVERITY", env.str, "warning")
if ALERT_EMAIL_MIN_SEVERITY not in {"info", "warning", "critical"}:
    raise ImproperlyConfigured(
        "ALERT_EMAIL_MIN_SEVERITY must be 'info', 'warning' or 'critical'"
    )

# --- OCPP ---------------------------------------------------------------------

# Unknown charge points: "reject" refuses the handshake, "pending" registers them
# with registration status Pending so staff can accept them in the admin.
OCPP_UNKNOWN_CHARGE_POINTS = _read("OCPP_UNKNOWN_CHARGE_POINTS", env.str, "reject")
if OCPP_UNKNOWN_CHARGE_POINTS not in {"reject", "pending"}:
    raise ImproperlyConfigured(
        "OCPP_UNKNOWN_CHARGE_POINTS must be 'reject' or 'pending'"
    )
OCPP_HEARTBEAT_INTERVAL_S = _read("OCPP_HEARTBEAT_INTERVAL_S", env.int, 300)

# --- REST API -----------------------------------------------------------------
# API keys (Authorization: Api-Key <key>) for scripts, sessions for logged-in
# staff; one error shape (api_access/errors.py); limits per key and per address.

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that 401 answers carry WWW-Authenticate: Api-Key.
        "api_access.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api_access.permissions.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["api_access.ratelimits.PerKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "api_access.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "api_access.schema.ApiAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies only: forms cannot say null, and one format keeps the docs short.
    # Numbers past float range and NUL characters are a 400 (api_access.parsers).
    "DEFAULT_PARSER_CLASSES": ["api_access.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "api_access.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GIU EV API",
    "DESCRIPTION": (
        "Sites, chargers, sessions, fleets, forecasts and remote commands of the "
        "GIU EV portal. Authenticate with `Authorization: Api-Key <key>` (keys are "
        "created by staff in the admin) or a staff browser session. Every error "
        "answer has the shape {status, code, reason[, fields]}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from the pinned drf-spectacular-sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ChargePointStatusEnum": "stations.models.ChargePointStatus",
        "IdTokenStatusEnum": "sessions.models.IdTokenStatus",
    },
}

# Rate limits (django-ratelimit syntax, "<count>/<s|m|h|d>"; empty turns one off).
# 600 a minute per key is 10 requests/s sustained: enough for a script paging
# through a month of sessions, low enough that one runaway loop cannot starve the
# chargers' database. Per address the limit is higher because several keys and
# staff browsers may share a NAT address.
API_RATE_PER_KEY = _read("API_RATE_PER_KEY", env.str, "600/m")
API_RATE_PER_ADDRESS = _read("API_RATE_PER_ADDRESS", env.str, "1200/m")
LOGIN_RATE_PER_ADDRESS = _read("LOGIN_RATE_PER_ADDRESS", env.str, "10/m")
# Behind a proxy set this to the header holding the client address, e.g.
# HTTP_X_REAL_IP (the proxy must overwrite it, never pass a client's value on).
RATELIMIT_IP_META_KEY = _read("RATELIMIT_IP_META_KEY", env.str, "REMOTE_ADDR")
for _name in ("API_RATE_PER_KEY", "API_RATE_PER_ADDRESS", "LOGIN_RATE_PER_ADDRESS"):
    _rate = globals()[_name]
    if _rate and not re.fullmatch(r"\d+/\d*[smhd]", _rate):
        raise ImproperlyConfigured(
            f"{_name} is invalid: {_rate!r}, expected e.g. 600/m"
        )

# A list's "count" is a COUNT(*) over every matching row: on the session list
# that was the largest single cost of a page (about 4 ms of PostgreSQL time for
# 30,000 sessions, growing with the table). Each filter combination's count is
# kept in the cache this long; 0 counts on every request. Pages and next/previous
# links never use it: they are exact on every request (api_access/pagination.py).
API_COUNT_CACHE_S = _read("API_COUNT_CACHE_S", env.int, 10)
if API_COUNT_CACHE_S < 0:
    raise ImproperlyConfigured("API_COUNT_CACHE_S is invalid: must be 0 or more")

# --- Fleet insights -------------------------------------------------------------
# Peak hours in each site's local time, [start, end) as hours of the day. 16:00 to
# 21:00 is the on-peak window of California's time-of-use tariffs (e.g. SCE TOU-D,
# PG&E E-TOU-C), where the ACN sites are.
FLEET_PEAK_HOURS = _read("FLEET_PEAK_HOURS", env.list, ["16", "21"])
try:
    FLEET_PEAK_START_HOUR, FLEET_PEAK_END_HOUR = (int(h) for h in FLEET_PEAK_HOURS)
    if not 0 <= FLEET_PEAK_START_HOUR < FLEET_PEAK_END_HOUR <= 24:
        raise ValueError("start must be before end, within 0..24")
except ValueError as exc:
    raise ImproperlyConfigured(
        f"FLEET_PEAK_HOURS is invalid: {FLEET_PEAK_HOURS!r} ({exc})"
    ) from exc

# A charger that offers no Sec-WebSocket-Protocol: accepted as OCPP 1.6 with a
# warning in its frame log (real embedded stacks do this, field case FC-30), or
# refused when this is true.
OCPP_REQUIRE_SUBPROTOCOL = _read("OCPP_REQUIRE_SUBPROTOCOL", env.bool, False)
# Security profile 1 (HTTP Basic). A charger with no password set is refused
# when this is true: the default in production (DATABASE_URL or REDIS_URL set),
# while the embedded default lets a lab charger connect without one.
OCPP_REQUIRE_PASSWORD = _read(
    "OCPP_REQUIRE_PASSWORD", env.bool, bool(DATABASE_URL or REDIS_URL)
)
# Failed handshakes from one address before it is refused without a check.
OCPP_AUTH_FAILURE_LIMIT = _read("OCPP_AUTH_FAILURE_LIMIT", env.int, 10)
OCPP_AUTH_FAILURE_WINDOW_S = _read("OCPP_AUTH_FAILURE_WINDOW_S", env.int, 300)
# How long a remote command waits for the charger's answer. 30 s is the
# response timeout the ocpp package uses and what charger vendors test against.
OCPP_COMMAND_TIMEOUT_S = _read("OCPP_COMMAND_TIMEOUT_S", env.float, 30.0)
# How long the process holding a socket has to confirm it took a command; no
# confirmation means the charger is not connected anywhere.
OCPP_COMMAND_ACK_TIMEOUT_S = _read("OCPP_COMMAND_ACK_TIMEOUT_S", env.float, 3.0)
# A charger is marked offline after this many heartbeat intervals of silence.
OCPP_OFFLINE_AFTER_INTERVALS = _read("OCPP_OFFLINE_AFTER_INTERVALS", env.int, 3)
OCPP_FRAME_RETENTION_DAYS = _read("OCPP_FRAME_RETENTION_DAYS", env.int, 30)

# Charger passwords are checked at every handshake; their hasher is registered
# after Django's defaults so staff passwords keep the default one.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "ocpp_bridge.hashers.ChargerPasswordHasher",
]

# Periodic tasks (django-celery-beat loads these into its database schedule).
CELERY_BEAT_SCHEDULE = {
    "ocpp-offline-check": {
        "task": "ocpp_bridge.tasks.charge_points_offline_check",
        "schedule": 60.0,
    },
    "ocpp-frames-prune": {
        "task": "ocpp_bridge.tasks.frames_prune",
        "schedule": 3600.0,
    },
}

# The ocpp package logs every frame at INFO; the frame log table keeps them.
LOGGING["loggers"]["ocpp"] = {"level": "WARNING"}
