"""The Grafana dashboard the chart ships: JSON in a ConfigMap Grafana's sidecar loads, whose every
query reads metrics the API and the workers really export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import worker.metrics  # noqa: F401  (its metrics join the process's registry)
from core.settings import MetricsSettings, Settings
from tests.helm.chart import CHART, RELEASE, ci_values, render, render_ci

DASHBOARD = CHART / "dashboards" / "rushes.json"
# What a family's samples are called, by its type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    queries += [
        variable["query"]["query"]
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]
    return queries


def _metric_names(query: str) -> set[str]:
    """The metrics a PromQL query reads: its identifiers, once label matchers and groupings are gone."""
    bare = re.sub(r"\{[^}]*\}", "", query)
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
    bare = re.sub(r'"[^"]*"', "", bare)
    return set(re.findall(r"\b(rushes_[a-z0-9_]+)\b", bare))


def _exported(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_the_dashboard_ships_in_a_configmap_for_grafanas_sidecar() -> None:
    rendered = render_ci("production")
    (config_map,) = [
        obj for obj in rendered.of_kind("ConfigMap") if obj["metadata"]["name"].endswith("-dashboard")
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert (
        config_map["metadata"]["annotations"]
        == ci_values("production")["metrics"]["dashboard"]["annotations"]
    )
    assert json.loads(config_map["data"]["rushes.json"]) == _dashboard()
    assert not [
        obj for obj in render_ci("minimal").of_kind("ConfigMap") if "dashboard" in obj["metadata"]["name"]
    ]


def test_the_dashboard_configmap_goes_where_the_sidecar_looks() -> None:
    values = {
        **ci_values("minimal"),
        "metrics": {"dashboard": {"enabled": True, "namespace": "monitoring", "labels": {"grafana": "yes"}}},
    }
    (config_map,) = [
        obj for obj in render(values).of_kind("ConfigMap") if "dashboard" in obj["metadata"]["name"]
    ]
    assert config_map["metadata"]["name"] == f"{RELEASE}-rushes-dashboard"
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana"] == "yes"


def test_every_panel_queries_prometheus_through_the_chosen_data_source() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    panels = [panel for panel in _panels(dashboard["panels"]) if panel["type"] != "row"]
    assert panels
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{source['name']}}}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert _metric_names(target["expr"]), f"{panel['title']}: {target['expr']} reads no Rushes metric"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics": MetricsSettings(enabled=True, cache_seconds=0)})


async def test_every_query_reads_a_metric_the_code_exports(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200  # the request metrics exist from the first
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    # The API's exposition, and the workers' metrics as their processes define them.
    exported = _exported(scraped.text) | _exported(generate_latest(REGISTRY).decode())
    used = set().union(*(_metric_names(query) for query in _queries(_dashboard())))
    assert used, "the dashboard reads no metric"
    assert used <= exported, f"the dashboard reads metrics nothing exports: {sorted(used - exported)}"
