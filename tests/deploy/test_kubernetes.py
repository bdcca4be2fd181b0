"""deploy/k8s: valid against Kubernetes' schemas, probed, bounded, sized, and free of secrets."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stolive.stack import DEFAULT_PORTS, SERVICES
from stolive_shared.contracts.topics import EVENTS, REGISTRATIONS, VIEWER_ACTIVITY, TopicSpec
from stolive_shared.runtime import parse_roles
from tests.deploy.conftest import K8S, OVERLAYS, roles_by_module
from tests.deploy.kustomize import Manifest, real_kustomize, render, render_with_kustomize

# A version kubernetes-validate bundles; clusters we target run 1.31 and later.
KUBERNETES_VERSION = "1.33.0"
SECRET_NAME = "stolive-secrets"
# What each consumer Deployment reads: more replicas than partitions would idle.
READS: dict[str, tuple[TopicSpec, ...]] = {
    "registrations-worker": (EVENTS,),
    "notifications-worker": (REGISTRATIONS,),
    "analytics-worker": (REGISTRATIONS, VIEWER_ACTIVITY),
}


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_spec(manifest: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def containers(manifest: Manifest) -> Iterator[dict[str, Any]]:
    pod = pod_spec(manifest)
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def workloads(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {**of_kind(manifests, "Deployment"), **of_kind(manifests, "Job")}


def test_there_is_a_production_overlay() -> None:
    assert "production" in [overlay.name for overlay in OVERLAYS]


def test_rendered_overlays_pass_strict_schema_validation(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    for name, manifests in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(manifests))
        done = subprocess.run(
            [
                *(sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"),
                *("-k", KUBERNETES_VERSION, str(path)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


def test_strict_validation_would_catch_a_misspelt_field(
    rendered: dict[str, list[Manifest]],
) -> None:
    deployment = copy.deepcopy(of_kind(rendered["production"], "Deployment")["events-api"])
    pod_spec(deployment)["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/healthz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_container_has_cpu_and_memory_requests_and_limits(
    rendered: dict[str, list[Manifest]],
) -> None:
    for manifests in rendered.values():
        for name, workload in workloads(manifests).items():
            for container in containers(workload):
                resources = container.get("resources", {})
                for bound in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(bound, {})), (
                        f"{name}/{container['name']} has no {bound}"
                    )


def test_every_long_running_container_is_probed(rendered: dict[str, list[Manifest]]) -> None:
    for manifests in rendered.values():
        for name, deployment in of_kind(manifests, "Deployment").items():
            (container,) = pod_spec(deployment)["containers"]
            _, module, roles = container["command"][1:4]
            if "api" in parse_roles(roles):
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
                assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
            else:
                assert module == "sto_analytics", f"{name} serves no HTTP: only Faust should"
                command = container["livenessProbe"]["exec"]["command"]
                assert command[-3:] == ["--process", module, roles], name


def test_public_apis_have_a_service_an_autoscaler_and_a_disruption_budget(
    rendered: dict[str, list[Manifest]],
) -> None:
    for manifests in rendered.values():
        services = of_kind(manifests, "Service")
        autoscalers = of_kind(manifests, "HorizontalPodAutoscaler")
        budgets = of_kind(manifests, "PodDisruptionBudget")
        deployments = of_kind(manifests, "Deployment")
        assert set(services) == {f"{s}-api" for s in SERVICES}
        assert set(autoscalers) == set(services)
        assert set(budgets) == set(services)
        for name, service in services.items():
            deployment = deployments[name]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert service["spec"]["selector"].items() <= labels.items()
            (container,) = pod_spec(deployment)["containers"]
            assert container["command"][-1] == "api", name
            assert service["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]
            target = autoscalers[name]["spec"]["scaleTargetRef"]
            assert (target["kind"], target["name"]) == ("Deployment", name)
        # No Service selects a relay or a consumer.
        for name, deployment in deployments.items():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            selecting = [
                s
                for s, svc in services.items()
                if svc["spec"]["selector"].items() <= labels.items()
            ]
            assert selecting == ([name] if name in services else []), name


def test_every_role_the_launcher_runs_has_a_deployment(
    rendered: dict[str, list[Manifest]], launcher_roles: dict[str, set[str]]
) -> None:
    for overlay, manifests in rendered.items():
        commands = [
            pod_spec(d)["containers"][0]["command"]
            for d in of_kind(manifests, "Deployment").values()
        ]
        deployed = roles_by_module(commands)
        for module, roles in launcher_roles.items():
            assert roles <= deployed.get(module, set()), f"{overlay}: {module} {roles}"


def test_consumers_are_sized_to_the_partitions_they_read(
    rendered: dict[str, list[Manifest]],
) -> None:
    for manifests in rendered.values():
        deployments = of_kind(manifests, "Deployment")
        for name, topics in READS.items():
            replicas = deployments[name]["spec"]["replicas"]
            assert 2 <= replicas <= max(t.partitions for t in topics), f"{name}: {replicas}"
        (faust,) = pod_spec(deployments["analytics-worker"])["containers"]
        worker_name = next(e for e in faust["env"] if e["name"] == "WORKER_NAME")
        assert worker_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_ingress_serves_each_api_under_the_gateways_prefix(
    rendered: dict[str, list[Manifest]],
) -> None:
    for manifests in rendered.values():
        (ingress,) = of_kind(manifests, "Ingress").values()
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"
        assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
        (rule,) = ingress["spec"]["rules"]
        routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
        assert routes == {f"/{s}(/|$)(.*)": f"{s}-api" for s in SERVICES}
        deployments = of_kind(manifests, "Deployment")
        for service in SERVICES:
            (container,) = pod_spec(deployments[f"{service}-api"])["containers"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["ROOT_PATH"] == f"/{service}"
            assert env["HTTP_PORT"] == str(DEFAULT_PORTS[service])


def test_the_setup_job_runs_the_compose_setup_command(
    rendered: dict[str, list[Manifest]], compose: dict[str, Any]
) -> None:
    for manifests in rendered.values():
        (job,) = of_kind(manifests, "Job").values()
        (container,) = pod_spec(job)["containers"]
        assert container["command"] == compose["services"]["stolive-setup"]["command"]


def test_every_pod_runs_as_a_non_root_user_on_a_read_only_root(
    rendered: dict[str, list[Manifest]],
) -> None:
    for manifests in rendered.values():
        for name, workload in workloads(manifests).items():
            pod = pod_spec(workload)
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] != 0, name
            for container in containers(workload):
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name


def test_production_settings_and_a_pinned_image(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["production"]
    config = of_kind(manifests, "ConfigMap")["stolive-config"]["data"]
    assert config["ENVIRONMENT"] == "production"
    assert config["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["SMTP_SECURITY"] in ("starttls", "tls")
    images = {c["image"] for w in workloads(manifests).values() for c in containers(w)}
    (image,) = images
    assert re.fullmatch(r".+:\d+\.\d+\.\d+", image), image


def test_no_secret_value_is_committed(rendered: dict[str, list[Manifest]]) -> None:
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert example["metadata"]["name"] == SECRET_NAME
    for key, value in example["stringData"].items():
        assert "change-me" in value, f"secret.example.yaml {key} is not a placeholder"
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|DATABASE_URL")
    for manifests in rendered.values():
        assert of_kind(manifests, "Secret") == {}, "the Secret is created by the operator"
        for key in of_kind(manifests, "ConfigMap")["stolive-config"]["data"]:
            assert not secretish.search(key), f"{key} belongs in the Secret"
        for name, workload in workloads(manifests).items():
            for container in containers(workload):
                for env in container.get("env", []):
                    if secretish.search(env["name"]):
                        assert "value" not in env, f"{name}: {env['name']} written in plain"
                        ref = env["valueFrom"]["secretKeyRef"]
                        assert ref["name"] == SECRET_NAME
                        assert ref["key"] in example["stringData"]


def test_the_renderer_agrees_with_a_real_kustomize() -> None:
    if real_kustomize() is None:
        pytest.skip("no kustomize or kubectl installed: the renderer is checked where one is")
    for directory in [K8S / "base", *OVERLAYS]:

        def key(m: Manifest) -> tuple[str, str]:
            return m["kind"], m["metadata"]["name"]

        ours = sorted(render(directory), key=key)
        theirs = sorted(render_with_kustomize(directory), key=key)
        assert ours == theirs, directory


def test_notifications_know_the_events_api_and_their_prefix(
    rendered: dict[str, list[Manifest]],
) -> None:
    for manifests in rendered.values():
        (config,) = (m for m in manifests if m["kind"] == "ConfigMap")
        assert config["data"]["EVENTS_API_URL"] == "http://events-api:8101"
        assert config["data"]["FORWARDED_ALLOW_IPS"] not in ("", "*")
        for name, deployment in of_kind(manifests, "Deployment").items():
            if not name.startswith("notifications-"):
                continue
            (container,) = pod_spec(deployment)["containers"]
            assert {"configMapRef": {"name": "stolive-config"}} in container["envFrom"], name
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["ROOT_PATH"] == "/notifications", name


def test_every_container_given_the_link_secret_gets_the_session_secret_from_the_same_secret(
    rendered: dict[str, list[Manifest]],
) -> None:
    """Production refuses to start without both (init containers migrate as production too)."""
    for overlay, manifests in rendered.items():
        for name, workload in workloads(manifests).items():
            for container in containers(workload):
                refs = {
                    env["name"]: env["valueFrom"]["secretKeyRef"]
                    for env in container.get("env", [])
                    if "secretKeyRef" in env.get("valueFrom", {})
                }
                where = f"{overlay}: {name}/{container['name']}"
                for key in ("LINK_SECRET", "SESSION_SECRET"):
                    assert refs.get(key) == {"name": SECRET_NAME, "key": key}, where
