"""The chart's values: documented, checked by values.schema.json, refused in words when they cannot work."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import jsonschema
import pytest

from tests.helm.chart import CHART, CI_NAMES, ci_values, load_yaml, render

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALID_DB = {"database": {"url": "postgresql+asyncpg://u:p@db:5432/rushes"}}
VALID_S3 = {"s3": {"endpoint": "s3.example.com", "accessKey": "a", "secretKey": "b"}}


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.validators.validator_for(SCHEMA).check_schema(SCHEMA)


def test_chart_defaults_satisfy_the_schema() -> None:
    jsonschema.validate(load_yaml(CHART / "values.yaml"), SCHEMA)


@pytest.mark.parametrize("name", CI_NAMES)
def test_ci_values_satisfy_the_schema(name: str) -> None:
    values = ci_values(name)
    jsonschema.validate(values, SCHEMA)
    # And as Helm checks them: merged over the chart's defaults.
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)


def test_ci_values_cover_the_four_kinds_of_installation() -> None:
    assert set(CI_NAMES) == {"minimal", "production", "s3-external-postgresql", "evaluation"}


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"workers": {"pools": [{"name": "Big_GPU"}]}}, "/workers/pools/0/name"),
        ({"workers": {"pools": [{"name": "a", "roles": ["render"]}]}}, "/workers/pools/0/roles/0"),
        ({"workers": {"pools": [{"name": "a", "memory": "80 GiB"}]}}, "/workers/pools/0/memory"),
        ({"workers": {"terminationGracePeriodSeconds": 30}}, "/workers/terminationGracePeriodSeconds"),
        ({"s3": {"endpoint": "https://s3.example.com"}}, "/s3/endpoint"),
        ({"database": {"url": "postgresql://u:p@db/rushes"}}, "/database/url"),
        ({"webhooks": {"signingKey": "too-short"}}, "/webhooks/signingKey"),
        ({"background": {"roles": ["train"]}}, "/background/roles/0"),
        ({"api": {"replicas": 3}}, "/api"),
        ({"metrics": {"token": "short"}}, "/metrics/token"),
        ({"metrics": {"workerPort": 80}}, "/metrics/workerPort"),
        ({"metrics": {"dashboard": {"labels": {"grafana_dashboard": 1}}}}, "/metrics/dashboard/labels"),
        ({"billing": {"stripeApiKey": "pk_live_51publishable"}}, "/billing/stripeApiKey"),
        ({"billing": {"webhookSecret": "sk_live_51notasigningsecret"}}, "/billing/webhookSecret"),
        ({"billing": {"portalReturnUrl": "rushes.example.com/account"}}, "/billing/portalReturnUrl"),
        ({"billing": {"existingSecretApiKeyKey": ""}}, "/billing/existingSecretApiKeyKey"),
    ],
)
def test_schema_refuses_values_that_cannot_work(values: dict[str, Any], where: str) -> None:
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    paths = [
        "/" + "/".join(str(part) for part in error.absolute_path) for error in validator.iter_errors(values)
    ]
    assert any(path.startswith(where) for path in paths), paths
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**VALID_S3}, "set database.url"),
        ({**VALID_DB}, "set s3.endpoint"),
        ({**VALID_DB, "s3": {"endpoint": "s3.example.com"}}, "set s3.accessKey and s3.secretKey"),
        (
            {**VALID_DB, **VALID_S3, "postgresql": {"enabled": True}},
            "leave database.url and database.existingSecret empty",
        ),
        (
            {**VALID_DB, **VALID_S3, "workers": {"pools": [{"name": "a"}, {"name": "a"}]}},
            'two pools are named "a"',
        ),
        (
            {**VALID_DB, **VALID_S3, "workers": {"pools": [{"name": "a", "bases": ["tiny"]}]}},
            "only generate-only pools may name bases",
        ),
        (
            {
                **VALID_DB,
                **VALID_S3,
                "workers": {"pools": [{"name": "a", "roles": ["generate"], "bases": ["wan"]}]},
            },
            'names base "wan", which bases.folders',
        ),
        (
            {
                **VALID_DB,
                **VALID_S3,
                "fullnameOverride": "x" * 30,
                "workers": {"pools": [{"name": "p" * 20}]},
            },
            "over 47 characters",
        ),
        ({**VALID_DB, **VALID_S3, "bases": {"folders": {"wan": "/models/wan"}}}, "no volume holds them"),
        (
            {**VALID_DB, **VALID_S3, "metrics": {"serviceMonitor": {"enabled": True}}},
            "set metrics.enabled=true too",
        ),
        (
            {**VALID_DB, **VALID_S3, "billing": {"enabled": True, "webhookSecret": "whsec_ci"}},
            "billing.enabled needs billing.stripeApiKey (sk_... or rk_...), or billing.existingSecret",
        ),
        (
            {**VALID_DB, **VALID_S3, "billing": {"enabled": True, "stripeApiKey": "sk_test_ci"}},
            "billing.enabled needs billing.webhookSecret",
        ),
    ],
)
def test_values_that_cannot_work_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match="VALUES VALIDATION") as failure:
        render(values)
    assert message in str(failure.value)


def _leaves(node: Any, path: str = "") -> list[str]:
    """Value paths down to scalars, lists and empty maps: what `## @param` lines document."""
    if isinstance(node, dict) and node:
        return [
            leaf for key, child in node.items() for leaf in _leaves(child, f"{path}.{key}" if path else key)
        ]
    return [path]


def test_every_value_is_documented_with_a_param_line() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.MULTILINE))
    missing = [
        leaf
        for leaf in _leaves(load_yaml(CHART / "values.yaml"))
        if not any(leaf == doc or leaf.startswith(doc + ".") for doc in documented)
    ]
    assert not missing, f"values without a `## @param` line: {missing}"
    leaves = _leaves(load_yaml(CHART / "values.yaml"))
    stale = [
        doc for doc in documented if not any(leaf == doc or leaf.startswith(doc + ".") for leaf in leaves)
    ]
    assert not stale, f"`## @param` lines for values that do not exist: {stale}"
