"""docker-compose.yml: valid, healthy, bounded, pinned, and running what the launcher runs."""

from __future__ import annotations

import importlib.util
import re
from inspect import signature
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from stolive.stack import DEFAULT_PORTS, SERVICES
from stolive_shared.runtime import parse_roles
from tests.deploy.conftest import ENV_EXAMPLE, ROOT, docker_compose, roles_by_module
from tests.deploy.test_public_address import (
    NGINX_CONF,
    http_level,
    locations,
    nginx_code,
    server_level,
    upstreams,
)

SETUP = "stolive-setup"
SETUP_COMMANDS = [
    "stolive topics",
    *(f"python -m sto_{service} migrate" for service in SERVICES),
]


def stolive_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the STO Live image (built from this repository's Dockerfile)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def long_running(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("restart", "no") != "no"}


def module_and_roles(service: dict[str, Any]) -> tuple[str, str]:
    command = service["command"]
    assert command[:2] == ["python", "-m"], command
    return command[2], command[3]


def test_docker_compose_accepts_the_file_with_an_env_copied_from_the_example(
    compose: dict[str, Any],
) -> None:
    assert {"postgres", "kafka", "mailpit", "jaeger", "proxy", SETUP} <= set(compose["services"])


def test_without_an_env_file_the_secrets_are_demanded_not_defaulted(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    done = docker_compose(empty)
    assert done.returncode != 0
    assert any(s in done.stderr for s in ("LINK_SECRET", "SESSION_SECRET", "POSTGRES_PASSWORD"))


def test_every_process_given_the_link_secret_gets_the_session_secret_from_env_too(
    compose: dict[str, Any], raw_compose: dict[str, Any]
) -> None:
    """Production refuses to start without both; they come from .env the same way."""
    raw = raw_compose["x-stolive-env"]
    for key in ("LINK_SECRET", "SESSION_SECRET"):
        assert raw[key] == f"${{{key}:?set {key} in .env}}"
    given_link = {
        n for n, s in compose["services"].items() if "LINK_SECRET" in s.get("environment", {})
    }
    given_session = {
        n for n, s in compose["services"].items() if "SESSION_SECRET" in s.get("environment", {})
    }
    assert given_link == given_session == set(stolive_services(compose))
    for name in given_link:
        env = compose["services"][name]["environment"]
        assert env["SESSION_SECRET"] != env["LINK_SECRET"], name


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    services = long_running(compose)
    assert len(services) >= 16
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), name


def test_every_service_has_cpu_and_memory_limits(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("cpus"), f"{name} has no CPU limit"
        assert limits.get("memory"), f"{name} has no memory limit"


def test_apis_are_checked_on_healthz_and_faust_workers_by_their_process(
    compose: dict[str, Any],
) -> None:
    for name, service in stolive_services(compose).items():
        if name == SETUP:
            continue
        module, roles = module_and_roles(service)
        test = service["healthcheck"]["test"]
        if "api" in parse_roles(roles):
            port = service["environment"]["HTTP_PORT"]
            assert test[-1] == f"http://127.0.0.1:{port}/healthz", name
        else:
            assert module == "sto_analytics", f"{name} serves no HTTP: only Faust should"
            assert test[-3:] == ["--process", module, roles], name


def test_services_run_the_launchers_commands_with_its_ports_and_prefixes(
    compose: dict[str, Any], launcher_roles: dict[str, set[str]]
) -> None:
    commands = []
    for name, service in stolive_services(compose).items():
        if name == SETUP:
            continue
        module, roles = module_and_roles(service)
        assert importlib.util.find_spec(module) is not None, module
        commands.append(service["command"])
        env = service["environment"]
        prefix = module.removeprefix("sto_")
        if "api" in parse_roles(roles):
            assert env["HTTP_PORT"] == str(DEFAULT_PORTS[prefix]), name
            assert env["ROOT_PATH"] == f"/{prefix}", name
    # Every role the launcher runs of every service runs here too (split over containers).
    compose_roles = roles_by_module(commands)
    for module, wanted in launcher_roles.items():
        assert wanted <= compose_roles.get(module, set()), f"{module}: {wanted}"
    # And the public API of each service is a container of its own, to scale alone.
    for each in SERVICES:
        assert ["python", "-m", f"sto_{each}", "api"] in commands


def test_two_analytics_workers_each_with_its_own_name(compose: dict[str, Any]) -> None:
    workers = [
        s
        for s in stolive_services(compose).values()
        if s.get("command") == ["python", "-m", "sto_analytics", "worker"]
    ]
    names = {w["environment"]["WORKER_NAME"] for w in workers}
    assert len(workers) == 2
    assert len(names) == 2


def test_the_setup_job_makes_topics_then_migrates_before_any_service_starts(
    compose: dict[str, Any],
) -> None:
    setup = compose["services"][SETUP]
    assert setup["restart"] == "no"
    assert setup["command"][:2] == ["sh", "-c"]
    assert [step.strip() for step in setup["command"][2].split("&&")] == SETUP_COMMANDS
    assert setup["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
    }
    for name, service in stolive_services(compose).items():
        if name != SETUP:
            assert service["depends_on"][SETUP] == {
                "condition": "service_completed_successfully"
            }, name
    proxy = compose["services"]["proxy"]["depends_on"]
    for each in SERVICES:
        assert proxy[f"{each}-api"] == {"condition": "service_healthy"}


def test_every_stolive_process_runs_as_production_on_apache_kafka(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "broker,controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    for name, service in stolive_services(compose).items():
        env = service["environment"]
        assert env["ENVIRONMENT"] == "production", name
        assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true", name
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
        assert service["read_only"] is True, name


def test_the_proxy_serves_each_api_under_the_gateways_prefix(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    mounted = {v.split(":")[0] for v in proxy["volumes"]}
    assert str(NGINX_CONF) in mounted
    code = nginx_code()
    groups = upstreams(code)
    prefixes = {b.pattern: b.body for b in locations(code) if not b.modifier}
    for service in SERVICES:
        upstream = f"{service}-api"
        assert upstream in compose["services"]
        body = prefixes.get(f"/{service}/")
        assert body is not None, f"no location for /{service}/"
        assert f"rewrite ^/{service}/(.*)$ /$1 break;" in body
        assert f"proxy_pass http://{upstream};" in body
        server = rf"^\s*server {upstream}:{DEFAULT_PORTS[service]} resolve\b"
        assert re.search(server, groups[upstream], re.M), upstream
    assert "proxy_buffering off;" in server_level(code)  # Server-Sent Events pass as they come


def test_the_proxy_keeps_connections_to_each_api_open_and_follows_its_containers() -> None:
    """Each API is an upstream nginx re-resolves through Docker's DNS (it starts before the APIs
    and follows a re-created container) and whose idle connections serve the next requests,
    dropped before the service would close them (uvicorn's default keep-alive, which
    stolive_shared/runtime.py leaves as it is)."""
    code = nginx_code()
    # `resolve` looks names up through the http-level resolver only.
    assert re.search(r"^\s*resolver 127\.0\.0\.11\b", http_level(code), re.M)
    groups = upstreams(code)
    assert set(groups) == {f"{service}-api" for service in SERVICES}
    uvicorn_keep_alive = signature(uvicorn.Config).parameters["timeout_keep_alive"].default
    for name, body in groups.items():
        assert re.search(r"^\s*zone \S+ \d+k;", body, re.M), name  # `resolve` needs one
        (server,) = re.findall(r"^\s*server\s+(.*);", body, re.M)
        # A rush's timed-out connects must not take the API out of rotation.
        assert {"resolve", "max_fails=0"} <= set(server.split()), name
        assert re.search(r"^\s*keepalive [1-9]\d*;", body, re.M), name
        (timeout,) = re.findall(r"^\s*keepalive_timeout (\d+)s;", body, re.M)
        assert int(timeout) < uvicorn_keep_alive, name
    inherited = server_level(code)
    assert "proxy_http_version 1.1;" in inherited  # keep-alive needs HTTP/1.1
    assert 'proxy_set_header Connection "";' in inherited  # and no `Connection: close`
    for block in locations(code):
        assert "proxy_http_version" not in block.body, block.pattern
        assert "proxy_set_header" not in block.body, block.pattern


def test_third_party_images_are_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        # A version (postgres is major.minor), never a moving tag such as latest or 17.
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+(\.\d+)?(-[\w.]+)?", image), f"{name}: {image}"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")


def test_no_secret_is_written_into_the_compose_file(raw_compose: dict[str, Any]) -> None:
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIAL")
    for name, service in raw_compose["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if key == "<<" or not secretish.search(key):
                continue
            assert re.fullmatch(r"\$\{[A-Z_]+(:?[-?][^}]*)?\}", str(value)), (
                f"{name}.{key} must come from .env, not be written here"
            )
    # The database password reaches DATABASE_URL only by substitution.
    url = raw_compose["x-stolive-env"]["DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in url


def test_env_example_holds_only_marked_placeholders() -> None:
    from stolive_shared.settings import ServiceSettings

    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    secrets = {k: v for k, v in values.items() if re.search(r"PASSWORD|SECRET", k)}
    assert {"LINK_SECRET", "SESSION_SECRET", "POSTGRES_PASSWORD", "SMTP_PASSWORD"} <= set(secrets)
    for key, value in secrets.items():
        assert value == "" or "change-me" in value, f"{key}={value!r} is not a placeholder"
    # And production refuses to start with either of the example's secrets.
    real = "0123456789abcdef" * 4
    example_link = ServiceSettings(
        link_secret=secrets["LINK_SECRET"], session_secret=real, environment="production"
    )
    example_session = ServiceSettings(
        link_secret=real, session_secret=secrets["SESSION_SECRET"], environment="production"
    )
    for key, settings in (("LINK_SECRET", example_link), ("SESSION_SECRET", example_session)):
        with pytest.raises(ValueError, match=f"^{key} must be set to a real secret"):
            settings.check_production_ready()


def test_dot_env_is_ignored_by_git_and_by_the_image_build() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    dockerignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert dockerignore[0] == "*"  # nothing enters the build context unless named
    assert not any(".env" in line for line in dockerignore if line.startswith("!"))


def test_notifications_know_the_events_api_and_their_prefix(compose: dict[str, Any]) -> None:
    for name, service in stolive_services(compose).items():
        if name == SETUP or module_and_roles(service)[0] != "sto_notifications":
            continue
        env = service["environment"]
        assert env["EVENTS_API_URL"] == "http://events-api:8101", name
        assert env["ROOT_PATH"] == "/notifications", name


def test_every_process_serves_metrics_on_a_port_of_its_own_inside_the_network(
    compose: dict[str, Any],
) -> None:
    """Off the HTTP port, so the proxy has no way to pass /metrics on; published nowhere."""
    for name, service in stolive_services(compose).items():
        if name == SETUP:
            continue
        env = service["environment"]
        port = env["METRICS_PORT"]
        assert int(port) > 0, name
        assert port != env.get("HTTP_PORT"), name
        assert port in [str(p) for p in service.get("expose", [])], name
        assert "ports" not in service, f"{name} publishes a port on the host"


def test_api_docs_are_off_for_every_process(compose: dict[str, Any]) -> None:
    for name, service in stolive_services(compose).items():
        assert service["environment"]["API_DOCS"] == "false", name


def test_only_the_proxy_is_trusted_to_say_who_the_client_is(compose: dict[str, Any]) -> None:
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    for name, service in stolive_services(compose).items():
        assert service["environment"]["FORWARDED_ALLOW_IPS"] == proxy_address, name
