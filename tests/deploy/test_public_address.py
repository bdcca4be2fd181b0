"""The public address serves the four APIs and nothing else: no metrics, no API documentation.
And it states who the client is, rather than passing on what the client claims.

Compose's public address is nginx (``deploy/nginx/stolive.conf``), Kubernetes' the Ingress.
No nginx is needed here: ``chosen`` picks a request's location the way nginx does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stolive.stack import DEFAULT_PORTS, SERVICES
from stolive_shared.settings import ServiceSettings
from tests.deploy.conftest import ROOT
from tests.deploy.kustomize import Manifest
from tests.deploy.test_kubernetes import of_kind, pod_spec

NGINX_CONF = ROOT / "deploy" / "nginx" / "stolive.conf"
# What no one outside may read through the public address, under each service's prefix.
REFUSED = (
    "metrics",
    "docs",
    "redoc",
    "openapi.json",
    "docs/oauth2-redirect",
    "metrics/",
    "internal/people/abc",
    "internal",
)
# Paths of each service's own that must still pass (a refused name as a prefix included).
PASSED = ("", "events", "documents", "metrics-of-an-event", "internals-of-an-event")


@dataclass(frozen=True)
class Location:
    modifier: str  # "", "=", "^~", "~" or "~*"
    pattern: str
    body: str


def nginx_code() -> str:
    """The config without its comment lines."""
    return re.sub(r"(?m)^\s*#.*$", "", NGINX_CONF.read_text())


def closing(code: str, at: int) -> int:
    """Just past the ``}`` that closes the block whose body starts at ``at``."""
    depth, quote = 1, ""
    while depth:
        char = code[at]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{}":
            depth += 1 if char == "{" else -1
        at += 1
    return at


def locations(code: str) -> list[Location]:
    """Every ``location`` block, in order (their bodies hold no nested blocks)."""
    found: list[Location] = []
    for match in re.finditer(r"^\s*location\s+(?:(=|\^~|~\*|~)\s+)?(\S+)\s*\{", code, re.M):
        body = code[match.end() : closing(code, match.end()) - 1]
        found.append(Location(match[1] or "", match[2], body))
    return found


def upstreams(code: str) -> dict[str, str]:
    """Every ``upstream`` block's body, by the group's name."""
    return {
        match[1]: code[match.end() : closing(code, match.end()) - 1]
        for match in re.finditer(r"^\s*upstream\s+(\S+)\s*\{", code, re.M)
    }


def without_blocks(code: str, kinds: str) -> str:
    """``code`` without its blocks of the given kinds (``"server|map"``), heads and bodies."""
    kept, at = [], 0
    for match in re.finditer(rf"^[ \t]*(?:{kinds})\b[^{{;]*\{{", code, re.M):
        if match.start() >= at:  # not inside a block already left out
            kept.append(code[at : match.start()])
            at = closing(code, match.end())
    return "".join([*kept, code[at:]])


def http_level(code: str) -> str:
    """The directives of the ``http`` context this file is included in."""
    return without_blocks(code, "server|upstream|map")


def server_level(code: str) -> str:
    """The ``server`` block's own directives, which every location inherits."""
    (match,) = re.finditer(r"^\s*server\s*\{", code, re.M)
    return without_blocks(code[match.end() : closing(code, match.end()) - 1], "location")


def chosen(blocks: list[Location], uri: str) -> Location:
    """The location nginx serves ``uri`` from: an exact match; else the longest matching prefix
    if it is ``^~``; else the first regex that matches, in the order written; else that prefix.
    """
    for block in blocks:
        if block.modifier == "=" and block.pattern == uri:
            return block
    prefixes = [b for b in blocks if b.modifier in ("", "^~") and uri.startswith(b.pattern)]
    longest = max(prefixes, key=lambda b: len(b.pattern), default=None)
    if longest is not None and longest.modifier == "^~":
        return longest
    for block in blocks:
        flags = re.I if block.modifier == "~*" else 0
        if block.modifier in ("~", "~*") and re.search(block.pattern, uri, flags):
            return block
    assert longest is not None, f"no location serves {uri}"
    return longest


def test_nginx_answers_404_for_every_services_metrics_api_documentation_and_internal_api() -> None:
    blocks = locations(nginx_code())
    for service in SERVICES:
        for path in REFUSED:
            block = chosen(blocks, f"/{service}/{path}")
            assert "return 404" in block.body, f"/{service}/{path} is served by {block.pattern}"
            assert "proxy_pass" not in block.body
        for path in PASSED:
            block = chosen(blocks, f"/{service}/{path}")
            assert block.pattern == f"/{service}/", f"/{service}/{path} went to {block.pattern}"
            assert f"proxy_pass http://{service}-api;" in block.body


def test_nginx_proxies_only_to_the_http_ports_never_to_a_metrics_port(
    compose: dict[str, Any],
) -> None:
    code = nginx_code()
    groups = upstreams(code)
    # Every proxy_pass goes to one of the upstreams: their servers are all nginx ever reaches.
    assert set(re.findall(r"proxy_pass\s+(\S+);", code)) == {f"http://{g}" for g in groups}
    upstream_ports = {
        int(port)
        for body in groups.values()
        for port in re.findall(r"^\s*server\s+[\w.-]+:(\d+)\b", body, re.M)
    }
    assert upstream_ports == {DEFAULT_PORTS[s] for s in SERVICES}
    metrics_ports = {
        int(s["environment"]["METRICS_PORT"])
        for s in compose["services"].values()
        if "METRICS_PORT" in s.get("environment", {})
    }
    assert metrics_ports
    assert not upstream_ports & metrics_ports


def test_nginx_states_the_client_address_itself_rather_than_appending_to_a_claimed_one() -> None:
    """nginx is the edge: a client's own X-Forwarded-For must never reach a service as its
    address (rate limits count per address). A further load balancer is trusted with
    set_real_ip_from, not by appending."""
    code = nginx_code()
    assert re.findall(r"proxy_set_header\s+X-Forwarded-For\s+(\S+);", code) == ["$remote_addr"]
    assert "$proxy_add_x_forwarded_for" not in code
    assert "$http_x_forwarded_for" not in code
    # A location's own proxy_set_header would drop the server's, this one included.
    for block in locations(code):
        assert "proxy_set_header" not in block.body, block.pattern


def targeted(service_port: dict[str, Any], container: dict[str, Any]) -> int:
    """The container port a Service port sends to (``targetPort`` by name or number)."""
    target = service_port.get("targetPort", service_port["port"])
    if isinstance(target, str):
        (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == target]
        return int(number)
    return int(target)


def selected_container(service: Manifest, deployments: dict[str, Manifest]) -> dict[str, Any]:
    selector = service["spec"]["selector"].items()
    (deployment,) = [
        d
        for d in deployments.values()
        if selector <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    container: dict[str, Any]
    (container,) = pod_spec(deployment)["containers"]
    return container


def test_the_ingress_routes_only_to_the_http_port_of_each_api(
    rendered: dict[str, list[Manifest]],
) -> None:
    for overlay, manifests in rendered.items():
        services = of_kind(manifests, "Service")
        deployments = of_kind(manifests, "Deployment")
        for name, ingress in of_kind(manifests, "Ingress").items():
            assert "defaultBackend" not in ingress["spec"], name
            # Snippets are refused by many controllers: nothing may depend on one.
            annotations = ingress["metadata"].get("annotations", {})
            assert not [a for a in annotations if a.endswith("-snippet")], name
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    assert backend["port"] == {"name": "http"}, f"{overlay}: {path['path']}"
                    service = services[backend["name"]]
                    (port,) = [p for p in service["spec"]["ports"] if p["name"] == "http"]
                    container = selected_container(service, deployments)
                    env = {e["name"]: e.get("value") for e in container["env"]}
                    assert targeted(port, container) == int(env["HTTP_PORT"]), backend["name"]


def test_every_process_serves_metrics_on_the_port_its_annotations_name_and_no_service_does(
    rendered: dict[str, list[Manifest]],
) -> None:
    for overlay, manifests in rendered.items():
        services = of_kind(manifests, "Service")
        deployments = of_kind(manifests, "Deployment")
        for name, deployment in deployments.items():
            (container,) = pod_spec(deployment)["containers"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert "METRICS_PORT" in env, f"{overlay}: {name} serves /metrics on its HTTP port"
            metrics_port = int(env["METRICS_PORT"])
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["metrics"] == metrics_port, name
            assert metrics_port != ports.get("http"), name
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true", name
            assert annotations["prometheus.io/path"] == "/metrics", name
            assert annotations["prometheus.io/port"] == str(metrics_port), name
        for service_name, service in services.items():
            container = selected_container(service, deployments)
            metrics_port = next(p for p in container["ports"] if p["name"] == "metrics")
            for port in service["spec"]["ports"]:
                assert port["name"] != "metrics", service_name
                assert targeted(port, container) != metrics_port["containerPort"], service_name


def test_production_turns_the_api_documentation_off(rendered: dict[str, list[Manifest]]) -> None:
    """Through the Ingress, /docs and /openapi.json answer 404 because the services serve none."""
    for manifests in rendered.values():
        (config,) = of_kind(manifests, "ConfigMap").values()
        settings = ServiceSettings.model_validate(
            {
                "environment": config["data"]["ENVIRONMENT"],
                "api_docs": config["data"].get("API_DOCS"),
            }
        )
        assert not settings.docs_enabled
        for name, deployment in of_kind(manifests, "Deployment").items():
            for container in pod_spec(deployment)["containers"]:
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                assert env.get("API_DOCS", "false") == "false", name
