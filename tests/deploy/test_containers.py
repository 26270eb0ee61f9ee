"""What can be checked of the image, compose file and manifests without a
Docker engine or a cluster: they parse, and they name the right commands,
ports, probes, users, config and secrets."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_DIR

K8S_DIR = REPO_DIR / "deploy" / "k8s"
SETTINGS = (REPO_DIR / "giu_ev" / "settings.py").read_text()


def dockerfile_stages() -> list[tuple[str, list[str]]]:
    """[(FROM line, instructions of that stage)], continuation lines joined."""
    text = (REPO_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def k8s_documents() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in K8S_DIR.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc.get("metadata", {}).get("name", ""))] = doc
    return docs


def container(docs, name: str) -> dict:
    return docs[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]


# --- Dockerfile -----------------------------------------------------------------


def test_the_image_is_built_in_stages_and_runs_slim():
    stages = dockerfile_stages()
    froms = [line for line, _ in stages]

    assert len(stages) >= 3
    assert any("node:" in f and " AS assets" in f for f in froms)
    assert any(" AS builder" in f for f in froms)
    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim AS runtime", froms[-1])
    assert re.search(
        r"^ARG PYTHON_VERSION=3\.11$", (REPO_DIR / "Dockerfile").read_text(), re.M
    )
    builder = dict(stages)[next(f for f in froms if " AS builder" in f)]
    assert any("pip wheel" in step for step in builder)
    assets = dict(stages)[next(f for f in froms if " AS assets" in f)]
    assert any("npm ci --omit=dev" in step for step in assets)


def test_the_runtime_stage_collects_static_runs_as_a_user_and_checks_health():
    _, runtime = dockerfile_stages()[-1]
    steps = "\n".join(runtime)

    assert "collectstatic --noinput" in steps
    users = [s.split()[1] for s in runtime if s.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    health = next(s for s in runtime if s.startswith("HEALTHCHECK"))
    assert "/healthz" in health
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in runtime
    assert 'CMD ["web"]' in runtime
    assert "EXPOSE 8000 9808" in runtime
    # No compiler in the runtime image: wheels come from the builder stage.
    assert "build-essential" not in steps


def test_secrets_and_local_state_stay_out_of_the_build_context():
    ignored = set((REPO_DIR / ".dockerignore").read_text().split())

    assert {".env", ".git", ".venv", "node_modules", "var"} <= ignored


def test_the_entrypoint_runs_a_management_command():
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    result = subprocess.run(
        ["sh", "docker/entrypoint.sh", "manage", "check"],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("role", "command"),
    [
        ("web", "exec daphne --bind 0.0.0.0 --port"),
        (
            "http",
            "exec gunicorn --config deploy/gunicorn.conf.py giu_ev.wsgi:application",
        ),
        ("worker", "exec celery --app giu_ev worker"),
        ("beat", "exec celery --app giu_ev beat"),
        ("migrate", "exec python manage.py migrate --noinput"),
    ],
)
def test_each_role_starts_its_program(role, command):
    script = (REPO_DIR / "docker" / "entrypoint.sh").read_text()

    block = script.split(f"  {role})", 1)[1].split(";;", 1)[0]
    assert command in block


def test_make_run_the_container_and_k8s_allow_chargers_the_same_message_size():
    script = (REPO_DIR / "docker" / "entrypoint.sh").read_text()
    makefile = (REPO_DIR / "Makefile").read_text()
    config = k8s_documents()[("ConfigMap", "giu-ev-config")]["data"]

    make_default = re.search(r"^OCPP_MAX_MESSAGE_BYTES \?= (\d+)$", makefile, re.M)
    container_default = re.search(r"OCPP_MAX_MESSAGE_BYTES:-(\d+)", script)
    assert make_default and container_default
    sizes = {
        make_default.group(1),
        container_default.group(1),
        config["OCPP_MAX_MESSAGE_BYTES"],
    }
    assert sizes == {"8388608"}  # 8 MiB, docs/ocpp.md
    for option in ("--websocket-max-message-size", "--websocket-max-frame-size"):
        assert option in script.split("  web)", 1)[1].split(";;", 1)[0]
        assert f"{option} $(OCPP_MAX_MESSAGE_BYTES)" in makefile


def test_the_web_role_keeps_charger_sockets_as_make_run_does():
    script = (REPO_DIR / "docker" / "entrypoint.sh").read_text()
    makefile = (REPO_DIR / "Makefile").read_text()

    web = script.split("  web)", 1)[1].split(";;", 1)[0]
    for option in ("--websocket_connect_timeout 30", "--websocket_timeout -1"):
        assert option in web
        assert option in makefile


# --- docker-compose ------------------------------------------------------------------


@pytest.fixture
def compose():
    return yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())["services"]


def test_compose_has_the_full_stack(compose):
    assert set(compose) == {
        "db",
        "redis",
        "migrate",
        "web",
        "http",
        "worker",
        "beat",
        "proxy",
    }
    assert compose["db"]["image"].startswith("postgres:")
    assert compose["redis"]["image"].startswith("redis:")
    assert compose["proxy"]["image"].startswith("nginx:")
    assert {
        name: compose[name]["command"]
        for name in ("migrate", "web", "http", "worker", "beat")
    } == {
        "migrate": ["migrate"],
        "web": ["web"],
        "http": ["http"],
        "worker": ["worker"],
        "beat": ["beat"],
    }


def test_compose_publishes_only_the_proxy_in_front_of_web_and_http(compose):
    assert compose["proxy"]["ports"] == ["8000:80"]
    assert [name for name, service in compose.items() if "ports" in service] == [
        "proxy"
    ]
    mount = compose["proxy"]["volumes"][0]
    source, target, mode = mount.split(":")
    assert (REPO_DIR / source).is_file()
    assert target == "/etc/nginx/conf.d/default.conf" and mode == "ro"
    for backend in ("web", "http"):
        assert compose["proxy"]["depends_on"][backend] == {
            "condition": "service_healthy"
        }


def test_web_worker_and_beat_start_after_the_migrations_ran_once(compose):
    assert compose["migrate"]["restart"] == "no"
    assert compose["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "http", "worker", "beat"):
        assert compose[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_compose_services_reach_the_database_and_redis_by_name(compose):
    for name in ("migrate", "web", "http", "worker", "beat"):
        env = compose[name]["environment"]
        assert "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        # The key comes from the operator's .env; compose refuses to start without.
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
        # gunicorn sees the proxy's address: the client's comes in X-Real-IP.
        assert env["RATELIMIT_IP_META_KEY"] == "HTTP_X_REAL_IP"
    assert "/healthz" in " ".join(compose["web"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(compose["http"]["healthcheck"]["test"])
    assert "9808" in " ".join(compose["worker"]["healthcheck"]["test"])


def test_the_database_gauges_come_from_http_and_not_also_from_web(compose):
    assert compose["web"]["environment"]["METRICS_DOMAIN_GAUGES"] == "0"
    assert "METRICS_DOMAIN_GAUGES" not in compose["http"]["environment"]
    assert "METRICS_DOMAIN_GAUGES" in SETTINGS


# --- Kubernetes ---------------------------------------------------------------


def test_every_manifest_parses_and_kustomize_lists_it():
    listed = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}

    assert set(listed) == on_disk
    assert k8s_documents()


def test_web_is_probed_on_readyz_and_healthz_and_served_by_a_service():
    docs = k8s_documents()
    web = container(docs, "giu-ev-web")

    assert web["args"] == ["web"]
    assert web["ports"] == [{"name": "http", "containerPort": 8000}]
    assert web["readinessProbe"]["httpGet"]["path"].startswith("/readyz")
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["port"] == "http"
    service = docs[("Service", "giu-ev-web")]["spec"]
    assert service["ports"][0]["targetPort"] == "http"
    assert (
        service["selector"]
        == docs[("Deployment", "giu-ev-web")]["spec"]["selector"]["matchLabels"]
    )


def test_http_is_probed_on_readyz_and_healthz_and_served_by_a_service():
    docs = k8s_documents()
    http = container(docs, "giu-ev-http")

    assert http["args"] == ["http"]
    assert http["ports"] == [{"name": "http", "containerPort": 8000}]
    assert http["readinessProbe"]["httpGet"] == {
        "path": "/readyz?skip=celery_worker",
        "port": "http",
    }
    assert http["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert http["startupProbe"]["httpGet"]["path"] == "/healthz"
    service = docs[("Service", "giu-ev-http")]["spec"]
    assert service["ports"][0]["targetPort"] == "http"
    assert (
        service["selector"]
        == docs[("Deployment", "giu-ev-http")]["spec"]["selector"]["matchLabels"]
    )


def test_http_pods_size_their_workers_and_outlast_a_graceful_stop():
    from tests.deploy.test_gunicorn import _ConfigOnly

    docs = k8s_documents()
    pod = docs[("Deployment", "giu-ev-http")]["spec"]["template"]["spec"]
    env = {item["name"]: item["value"] for item in pod["containers"][0]["env"]}
    cpu_request = float(pod["containers"][0]["resources"]["requests"]["cpu"])

    # Without a CPU limit the config would count the node's CPUs: set it.
    assert int(env["HTTP_WORKERS"]) == 2 * cpu_request
    # The root file system is read-only: the counters go on a mounted volume.
    mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    assert any(env["PROMETHEUS_MULTIPROC_DIR"].startswith(f"{m}/") for m in mounts)
    graceful_timeout_s = _ConfigOnly().cfg.graceful_timeout
    assert pod["terminationGracePeriodSeconds"] > graceful_timeout_s
    # A probe that waits behind workers busy with charger commands (30 s each)
    # must not restart a busy pod.
    liveness = pod["containers"][0]["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_the_ingress_sends_websockets_to_daphne_and_the_rest_to_gunicorn():
    docs = k8s_documents()
    routes = {
        path["path"]: (name, path["backend"]["service"]["name"])
        for (kind, name), doc in docs.items()
        if kind == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }

    assert routes == {
        "/ocpp": ("giu-ev-websockets", "giu-ev-web"),
        "/ws/": ("giu-ev-websockets", "giu-ev-web"),
        "/": ("giu-ev", "giu-ev-http"),
    }
    sockets = docs[("Ingress", "giu-ev-websockets")]["metadata"]["annotations"]
    pages = docs[("Ingress", "giu-ev")]["metadata"]["annotations"]
    # Idle charger sockets outlive heartbeats (300 s); gunicorn's sync workers
    # get whole requests and hand over whole answers.
    assert int(sockets["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 300
    assert pages["nginx.ingress.kubernetes.io/proxy-buffering"] == "on"
    assert pages["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    assert int(pages["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60


def test_the_database_gauges_come_from_the_http_pods_only():
    docs = k8s_documents()
    web_env = container(docs, "giu-ev-web")["env"]

    assert {"name": "METRICS_DOMAIN_GAUGES", "value": "0"} in web_env
    http_env = container(docs, "giu-ev-http")["env"]
    assert "METRICS_DOMAIN_GAUGES" not in {item["name"] for item in http_env}
    config = docs[("ConfigMap", "giu-ev-config")]["data"]
    assert "METRICS_DOMAIN_GAUGES" not in config
    assert config["RATELIMIT_IP_META_KEY"] == "HTTP_X_REAL_IP"


def test_worker_and_beat_run_their_roles_and_beat_stays_single():
    docs = k8s_documents()

    assert container(docs, "giu-ev-worker")["args"] == ["worker"]
    assert (
        container(docs, "giu-ev-worker")["livenessProbe"]["httpGet"]["port"]
        == "metrics"
    )
    assert container(docs, "giu-ev-beat")["args"] == ["beat"]
    beat = docs[("Deployment", "giu-ev-beat")]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"
    job = docs[("Job", "giu-ev-migrate")]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate"]
    assert job["restartPolicy"] == "Never"


def test_pods_run_as_non_root_with_config_and_secrets_from_the_cluster():
    docs = k8s_documents()
    pod_specs = [
        docs[("Deployment", name)]["spec"]["template"]["spec"]
        for name in ("giu-ev-web", "giu-ev-http", "giu-ev-worker", "giu-ev-beat")
    ] + [docs[("Job", "giu-ev-migrate")]["spec"]["template"]["spec"]]

    for spec in pod_specs:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        sources = spec["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "giu-ev-config"}} in sources
        assert {"secretRef": {"name": "giu-ev-secrets"}} in sources


def test_secrets_are_in_the_secret_and_config_names_real_settings():
    docs = k8s_documents()
    config = docs[("ConfigMap", "giu-ev-config")]["data"]
    secret = docs[("Secret", "giu-ev-secrets")]["stringData"]

    assert {"SECRET_KEY", "DATABASE_URL"} <= set(secret)
    assert "SECRET_KEY" not in config and "DATABASE_URL" not in config
    entrypoint = (REPO_DIR / "docker" / "entrypoint.sh").read_text()
    for name in config:
        assert f'"{name}"' in SETTINGS or name in entrypoint, f"{name} is read nowhere"


def test_prometheus_annotations_point_at_the_ports_that_serve_metrics():
    docs = k8s_documents()

    for name, port, path in (
        ("giu-ev-web", "8000", "/metrics"),
        ("giu-ev-http", "8000", "/metrics"),
        ("giu-ev-worker", "9808", "/"),
    ):
        template = docs[("Deployment", name)]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == port
        assert annotations["prometheus.io/path"] == path
        ports = {p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        assert int(port) in ports
