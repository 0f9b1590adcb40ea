"""Stripe billing in the chart: its secrets reach the API and the background roles only, from
the chart's Secret or an existing one, and the background Deployment runs the billing role."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import (
    CI_NAMES,
    RELEASE,
    Obj,
    Rendered,
    ci_values,
    containers,
    env_of,
    pod_specs,
    render,
)

FULLNAME = f"{RELEASE}-rushes"
API_KEY = "RUSHES_BILLING__STRIPE_API_KEY"
WEBHOOK_SECRET = "RUSHES_BILLING__WEBHOOK_SECRET"
STRIPE_KEY = "sk_test_ci51StripeKey0a1b2c"
SIGNING_SECRET = "whsec_ciSigningSecret3d4e5f"
PLAIN = {"enabled": True, "stripeApiKey": STRIPE_KEY, "webhookSecret": SIGNING_SECRET}


def _with_billing(billing: dict[str, Any], **more: Any) -> Rendered:
    return render({**ci_values("minimal"), "billing": billing, **more})


def _billing_env(rendered: Rendered) -> dict[str, dict[str, Obj]]:
    """Pod (kind/name) to its billing env entries, over every container of every pod."""
    return {
        where: {
            name: entry
            for container in containers(spec)
            for name, entry in env_of(container).items()
            if name.startswith("RUSHES_BILLING__")
        }
        for where, _, spec in pod_specs(rendered)
    }


def _refs(entries: dict[str, Obj]) -> dict[str, Obj]:
    return {name: entry["valueFrom"]["secretKeyRef"] for name, entry in entries.items()}


@pytest.mark.parametrize("name", CI_NAMES)
def test_stripe_secrets_reach_the_api_and_the_background_roles_only(name: str) -> None:
    values = ci_values(name)
    values.setdefault("billing", PLAIN)  # on in every example; production names an existing Secret
    rendered = render(values)
    fullname = rendered.merged.get("fullnameOverride") or FULLNAME
    found = _billing_env(rendered)
    # The API verifies Stripe's webhook; the background's billing role only sends usage.
    assert found.pop(f"Deployment/{fullname}-api").keys() == {API_KEY, WEBHOOK_SECRET}
    assert found.pop(f"Deployment/{fullname}-background").keys() == {API_KEY}
    assert any("-worker-" in where for where in found), "no worker pool rendered"
    # Worker pools (Deployments and ScaledJobs), the migration Job, the evaluation stores: none.
    assert {where: env for where, env in found.items() if env} == {}


def test_billing_off_puts_nothing_of_stripe_anywhere() -> None:
    rendered = render(ci_values("minimal"))
    assert not any(_billing_env(rendered).values())
    assert not {"stripe-api-key", "stripe-webhook-secret"} & rendered.secret_data(FULLNAME).keys()
    assert "RUSHES_BILLING__PORTAL_RETURN_URL" not in rendered.get("ConfigMap", FULLNAME)["data"]
    assert "Stripe" not in rendered.notes


def test_plain_keys_are_written_to_the_charts_secret() -> None:
    rendered = _with_billing({**PLAIN, "portalReturnUrl": "https://rushes.example.com/account"})
    app = rendered.secret_data(FULLNAME)
    assert (app["stripe-api-key"], app["stripe-webhook-secret"]) == (STRIPE_KEY, SIGNING_SECRET)
    api = _refs(_billing_env(rendered)[f"Deployment/{FULLNAME}-api"])
    assert api == {
        API_KEY: {"name": FULLNAME, "key": "stripe-api-key"},
        WEBHOOK_SECRET: {"name": FULLNAME, "key": "stripe-webhook-secret"},
    }
    background = _refs(_billing_env(rendered)[f"Deployment/{FULLNAME}-background"])
    assert background == {API_KEY: {"name": FULLNAME, "key": "stripe-api-key"}}
    # The return URL is no secret: the ConfigMap carries it.
    config = rendered.get("ConfigMap", FULLNAME)["data"]
    assert config["RUSHES_BILLING__PORTAL_RETURN_URL"] == "https://rushes.example.com/account"
    assert STRIPE_KEY not in str(config) and SIGNING_SECRET not in str(config)


def test_an_existing_secret_is_read_under_its_own_key_names() -> None:
    rendered = _with_billing(
        {
            "enabled": True,
            "existingSecret": "stripe",
            "existingSecretApiKeyKey": "restricted-key",
            "existingSecretWebhookSecretKey": "whsec",
        }
    )
    env = _billing_env(rendered)
    assert _refs(env[f"Deployment/{FULLNAME}-api"]) == {
        API_KEY: {"name": "stripe", "key": "restricted-key"},
        WEBHOOK_SECRET: {"name": "stripe", "key": "whsec"},
    }
    assert _refs(env[f"Deployment/{FULLNAME}-background"]) == {
        API_KEY: {"name": "stripe", "key": "restricted-key"}
    }
    # Nothing of Stripe's is written by the chart, and no portal URL was given.
    assert not {"stripe-api-key", "stripe-webhook-secret"} & rendered.secret_data(FULLNAME).keys()
    assert "RUSHES_BILLING__PORTAL_RETURN_URL" not in rendered.get("ConfigMap", FULLNAME)["data"]


def test_a_new_stripe_key_rolls_the_pods_that_read_it() -> None:
    before = _with_billing(PLAIN)
    after = _with_billing({**PLAIN, "stripeApiKey": "sk_test_ci51RotatedKey9z8y"})

    def checksum(rendered: Rendered, where: str) -> str:
        meta = next(meta for at, meta, _ in pod_specs(rendered) if at == where)
        value: str = meta["annotations"]["checksum/secret"]
        return value

    for where in (f"Deployment/{FULLNAME}-api", f"Deployment/{FULLNAME}-background"):
        assert checksum(before, where) != checksum(after, where), where


def test_the_background_runs_the_roles_it_is_given() -> None:
    rendered = _with_billing(PLAIN, background={"roles": ["billing"]})
    (container,) = rendered.get("Deployment", f"{FULLNAME}-background")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["args"] == ["worker", "--roles", "billing"]


def test_notes_name_the_stripe_webhook_endpoint() -> None:
    notes = render(ci_values("production")).notes
    assert "https://rushes.example.com/v1/billing/stripe/webhook" in notes
    assert "Secret rushes-stripe" in notes
