"""The alert rules and the Grafana dashboard are valid and name only metrics
that the portal really exports, and every domain metric is watched by one."""

import json
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_DIR
from tests.giu_ev.servers import TEST_REDIS_URL

PROMETHEUS_DIR = REPO_DIR / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = REPO_DIR / "deploy" / "grafana" / "giu-ev-dashboard.json"
PROMTOOL = shutil.which("promtool")

# Series names in PromQL: ours (giu_), django-prometheus' (django_), and `up`,
# the series Prometheus records itself for every target it scrapes.
METRIC_NAME = re.compile(r"\b(?:giu_|django_)[a-zA-Z0-9_:]*|\bup\b(?=\s*\{)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def names_in(exprs) -> set[str]:
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def family_of(name: str, families: set[str]) -> str | None:
    """The exported family a series name belongs to (histogram/counter parts)."""
    if name in families:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            return name.removesuffix(suffix)
    return None


@pytest.fixture
def scraped_families(client, db, settings):
    """Families on /metrics, set up as production runs, with something to count."""
    from django.core.cache import cache

    from sessions.models import ChargingSession
    from stations.models import ChargePoint, Connector, Site
    from stations.tasks import site_silence_check

    now = timezone.now()
    site = Site.objects.create(code="depot", name="Depot")
    charge_point = ChargePoint.objects.create(
        identity="D-1", site=site, is_connected=False, last_seen_at=now
    )
    Connector.objects.create(
        charge_point=charge_point,
        number=1,
        status="Faulted",
        status_updated_at=now - timedelta(hours=1),
    )
    ChargingSession.objects.create(charge_point=charge_point, started_at=now)
    site_silence_check.delay()
    # The production cache: django-prometheus' wrapper of Django's Redis cache.
    settings.CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.NativeRedisCache",
            "LOCATION": TEST_REDIS_URL,
        }
    }
    cache.get("giu-ev-test-missing-key")

    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        family.name: family
        for family in text_string_to_metric_families(response.content.decode())
    }


def test_every_rule_is_complete():
    for rule in rules():
        assert rule["alert"] and rule["expr"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_the_rules_cover_what_the_issue_asks_for():
    assert {rule["alert"] for rule in rules()} >= {
        "ChargerOffline",
        "ConnectorFaultedForLong",
        "SiteSilent",
        "ForecastWorseThanBaseline",
        "RetrainOverdue",
        "HttpErrorRate",
        "OcppCallErrorRate",
    }


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus) missing")
def test_promtool_accepts_the_rules_and_the_scrape_config():
    for args in (
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        # Unit tests: each alert fires on the series that should fire it, and
        # only after its `for:` time.
        ["test", "rules", "alerts_test.yml"],
    ):
        result = subprocess.run(
            [PROMTOOL, *args],
            cwd=PROMETHEUS_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_kubernetes_scrape_job_parses():
    document = yaml.safe_load(
        (PROMETHEUS_DIR / "prometheus-kubernetes.yml").read_text()
    )

    job = document["scrape_configs"][0]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"


@pytest.mark.integration
def test_rules_and_dashboard_name_only_exported_metrics(scraped_families):
    names = names_in(rule["expr"] for rule in rules()) | names_in(dashboard_exprs())

    missing = {
        name
        for name in names - {"up"}
        if family_of(name, set(scraped_families)) is None
    }
    assert names, "no metric names found: the pattern is wrong"
    assert missing == set()


@pytest.mark.integration
def test_the_gauges_the_rules_watch_have_series_after_data_exists(scraped_families):
    for name in (
        "giu_charger_connected",
        "giu_connector_faulted_seconds",
        "giu_site_heartbeat_age_seconds",
        "giu_chargers",
        "giu_connectors",
        "giu_active_sessions",
        "giu_celery_tasks",
        "giu_celery_task_duration_seconds",
        "giu_metrics_source_up",
    ):
        assert scraped_families[name].samples, name


@pytest.mark.integration
def test_every_domain_metric_is_on_the_dashboard_or_in_a_rule(scraped_families):
    used = {
        family_of(name, set(scraped_families))
        for name in names_in(rule["expr"] for rule in rules())
        | names_in(dashboard_exprs())
    }

    # <name>_created holds a counter's creation time, exported beside it.
    domain = {
        n
        for n in scraped_families
        if n.startswith("giu_") and family_of(n.removesuffix("_created"), used) is None
    }
    unwatched = domain - used
    assert unwatched == set()


def test_the_dashboard_uses_a_datasource_variable():
    document = json.loads(DASHBOARD.read_text())

    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in document["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
