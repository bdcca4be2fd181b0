"""The alert rules in ``deploy/prometheus/alerts.yml`` watch series the code exports, cover
every backlog an unattended platform can build up, and the guide explains each one.

Checked with ``promtool check rules`` where it is installed; the YAML and the series names are
checked everywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from stolive_shared import metrics
from tests.deploy.conftest import ROOT

RULES_FILE = ROOT / "deploy" / "prometheus" / "alerts.yml"
GUIDE = (ROOT / "deploy" / "README.md").read_text()


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_series() -> set[str]:
    """Every series name the services' registry can show (counters with and without _total)."""
    assert metrics.DEAD_LETTERS_OPEN is not None  # the module's series are registered
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_every_alert_is_complete_and_watches_a_series_the_code_exports() -> None:
    exported = exported_series()
    for rule in rules():
        assert rule["alert"].startswith("Stolive"), rule
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
        assert rule["annotations"]["summary"], rule
        used = set(re.findall(r"\bstolive_[a-z_]+", rule["expr"]))
        assert used, f"{rule['alert']} watches no stolive series"
        assert used <= exported, f"{rule['alert']}: {sorted(used - exported)} exported by nothing"


def test_each_backlog_of_an_unattended_platform_has_an_alert() -> None:
    watched = {name for rule in rules() for name in re.findall(r"stolive_[a-z_]+", rule["expr"])}
    assert {
        "stolive_consumer_lag",
        "stolive_outbox_oldest_unpublished_seconds",
        "stolive_outbox_backlog",
        "stolive_emails_stuck_sending",
        "stolive_dead_letters_open",
        "stolive_consumer_messages_total",
    } <= watched


def test_the_guide_explains_every_alert_and_the_new_series() -> None:
    for rule in rules():
        assert f"`{rule['alert']}`" in GUIDE, f"deploy/README.md does not explain {rule['alert']}"
    for series in (
        "stolive_outbox_oldest_unpublished_seconds",
        "stolive_dead_letters_open",
        "stolive_emails_sending",
        "stolive_emails_stuck_sending",
    ):
        assert f"`{series}`" in GUIDE, f"deploy/README.md does not name {series}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES_FILE)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
