"""Render a kustomization: with a real kustomize when one is installed, else with ``render``.

``render`` is a small renderer for exactly the kustomize features ``deploy/k8s`` uses, and it
refuses any other: ``resources`` (files and directories), ``namespace``, ``images``,
``replicas`` and ``patches`` (strategic merge, or JSON 6902 with a ``target``). Strategic merge
follows Kubernetes' merge keys for the lists our patches touch (containers, env, ports,
volumes by ``name``); any other list is replaced, as kustomize does for lists without a key.
``test_kubernetes.py`` checks it renders what a real kustomize renders, where one exists.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

_SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Lists merged item by item (by this key) in a strategic merge patch.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
# Kinds that live outside namespaces (none of ours today; listed so a new one is not missed).
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass"}


@functools.cache
def real_kustomize() -> list[str] | None:
    """The command of an installed kustomize (standalone or kubectl's), if any."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        probe = subprocess.run(
            ["kubectl", "kustomize", "--help"], capture_output=True, timeout=20, check=False
        )
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    return None


def render_with_kustomize(directory: Path) -> list[Manifest]:
    command = real_kustomize()
    if command is None:
        raise RuntimeError("no kustomize installed")
    done = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=60, check=True
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_any(directory: Path) -> list[Manifest]:
    """A real kustomize's output where one is installed, else ours."""
    return render_with_kustomize(directory) if real_kustomize() else render(directory)


def render(directory: Path) -> list[Manifest]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _SUPPORTED
    if unknown:
        raise NotImplementedError(f"{directory}: kustomize fields {sorted(unknown)}")
    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            manifests.extend(render(path))
        else:
            manifests.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for patch in kustomization.get("patches", []):
        _apply_patch(manifests, directory, patch)
    for replicas in kustomization.get("replicas", []):
        _find(manifests, None, replicas["name"])["spec"]["replicas"] = replicas["count"]
    for image in kustomization.get("images", []):
        _set_image(manifests, image)
    namespace = kustomization.get("namespace")
    if namespace:
        for manifest in manifests:
            if manifest["kind"] not in _CLUSTER_SCOPED:
                manifest["metadata"]["namespace"] = namespace
    return manifests


def _find(manifests: list[Manifest], kind: str | None, name: str) -> Manifest:
    found = [
        m
        for m in manifests
        if m["metadata"]["name"] == name and (kind is None or m["kind"] == kind)
    ]
    if len(found) != 1:
        raise LookupError(f"{len(found)} resources named {kind or '*'}/{name}")
    return found[0]


def _apply_patch(manifests: list[Manifest], directory: Path, patch: dict[str, Any]) -> None:
    if set(patch) - {"path", "target"}:
        raise NotImplementedError(f"patch fields {sorted(patch)}")
    body = yaml.safe_load((directory / patch["path"]).read_text())
    if isinstance(body, list):  # JSON 6902
        target = patch["target"]
        if set(target) - {"kind", "name"}:
            raise NotImplementedError(f"patch target fields {sorted(target)}")
        manifest = _find(manifests, target["kind"], target["name"])
        for operation in body:
            _json_patch(manifest, operation)
        return
    if "target" in patch:
        raise NotImplementedError("a strategic merge patch names its target itself")
    manifest = _find(manifests, body["kind"], body["metadata"]["name"])
    merged = _merge(manifest, body)
    manifest.clear()
    manifest.update(merged)


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for name, value in patch.items():
            out[name] = _merge(base[name], value, name) if name in base else value
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in _MERGE_KEYS:
        by = _MERGE_KEYS[key]
        out_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            match = [i for i, old in enumerate(out_list) if old.get(by) == item.get(by)]
            if match:
                out_list[match[0]] = _merge(out_list[match[0]], item)
            else:
                out_list.append(item)
        return out_list
    return copy.deepcopy(patch)


def _json_patch(manifest: Manifest, operation: dict[str, Any]) -> None:
    if operation["op"] not in ("add", "replace"):
        raise NotImplementedError(f"JSON patch op {operation['op']}")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
    node: Any = manifest
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if operation["op"] == "add":
            node.insert(index, operation["value"])
        else:
            node[index] = operation["value"]
    else:
        if operation["op"] == "replace" and last not in node:
            raise KeyError(f"replace of a missing {operation['path']}")
        node[last] = operation["value"]


def _set_image(manifests: list[Manifest], image: dict[str, str]) -> None:
    for manifest in manifests:
        pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            name = container["image"].split("@")[0].rsplit(":", 1)[0]
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            tag = image.get("newTag")
            container["image"] = f"{new}:{tag}" if tag else new
