"""The chart rendered with each values file in helm/rushes/ci: valid as a cluster sees it, and safe.

Every object is validated against Kubernetes' own schemas (kubernetes-validate, strict:
unknown fields fail) at the oldest Kubernetes the chart supports and the newest known;
KEDA's and the Prometheus Operator's objects against their CRDs, vendored in crds/.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from pglast import parser as pg

from tests.helm.chart import (
    CHART,
    CI_NAMES,
    NAMESPACE,
    RELEASE,
    Obj,
    Rendered,
    chart_kube_version,
    ci_values,
    containers,
    env_of,
    pod_specs,
    pool_name,
    pools,
    render,
    render_ci,
)
from worker.__main__ import memory_size

CRDS = Path(__file__).parent / "crds"
KUBE_VERSIONS = [chart_kube_version(), kubernetes_validate.utils.latest_version()]
GPU = "nvidia.com/gpu"
CUSTOM_GROUPS = {"keda.sh", "monitoring.coreos.com"}
SECRET_SETTINGS = {
    "RUSHES_DATABASE__URL",
    "RUSHES_STORAGE__S3_ACCESS_KEY",
    "RUSHES_STORAGE__S3_SECRET_KEY",
    "RUSHES_WEBHOOKS__SIGNING_KEY",
    "RUSHES_METRICS__TOKEN",
    "RUSHES_BILLING__STRIPE_API_KEY",
    "RUSHES_BILLING__WEBHOOK_SECRET",
}
# Settings the API reads only when their feature is on.
OPTIONAL_SECRET_SETTINGS = {
    "RUSHES_METRICS__TOKEN",
    "RUSHES_BILLING__STRIPE_API_KEY",
    "RUSHES_BILLING__WEBHOOK_SECRET",
}

ci = pytest.mark.parametrize("name", CI_NAMES)


# ------------------------------------------------------------------ validity --


@ci
def test_lint_finds_no_warning(name: str) -> None:
    report = helm.lint(CHART, ci_values(name), strict=True, kube_version=f"v{chart_kube_version()}.0")
    assert not report["errors"], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@ci
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_every_object_is_valid_kubernetes(name: str, kube: str) -> None:
    rendered = render_ci(name)
    checked = 0
    for obj in rendered.objects:
        if obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
            continue
        kubernetes_validate.validate(obj, kube, strict=True)
        checked += 1
    for scaled_job in rendered.of_kind("ScaledJob"):
        # KEDA makes a Job from jobTargetRef: hold it to the Job schema too.
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}
        kubernetes_validate.validate({**job, "spec": scaled_job["spec"]["jobTargetRef"]}, kube, strict=True)
    assert checked > 5


def _strict(schema: Any) -> Any:
    """A CRD's structural schema with unknown fields refused, as `kubectl apply --validate=strict` does."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


@ci
def test_custom_resources_match_their_crds(name: str) -> None:
    for obj in render_ci(name).objects:
        if obj["apiVersion"].split("/")[0] not in CUSTOM_GROUPS:
            continue
        validator = _crd_validators().get((obj["apiVersion"], obj["kind"]))
        assert validator is not None, f"no vendored CRD for {obj['apiVersion']} {obj['kind']}"
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(obj)]
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: {errors}"


def test_the_production_values_render_every_kind_of_object() -> None:
    kinds = {obj["kind"] for obj in render_ci("production").objects}
    assert kinds >= {
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "ScaledJob",
        "ScaledObject",
        "TriggerAuthentication",
        "ServiceMonitor",
        "NetworkPolicy",
        "ServiceAccount",
        "ConfigMap",
    }


@ci
def test_every_object_carries_the_standard_labels(name: str) -> None:
    for obj in render_ci(name).objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "rushes", obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/instance") == RELEASE
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        assert labels.get("helm.sh/chart", "").startswith("rushes-")
        assert obj["metadata"].get("namespace") == NAMESPACE


# ------------------------------------------------------------------ security --


@ci
def test_every_pod_runs_hardened_with_resources_on_every_container(name: str) -> None:
    found = list(pod_specs(render_ci(name)))
    assert found
    for where, _, spec in found:
        assert spec.get("automountServiceAccountToken") is False, where
        pod_security = spec.get("securityContext", {})
        for container in containers(spec):
            at = f"{where} container {container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, at
            assert security.get("runAsUser", 0) != 0, at
            assert security.get("readOnlyRootFilesystem") is True, at
            assert security.get("allowPrivilegeEscalation") is False, at
            assert security.get("privileged", False) is False, at
            assert security.get("capabilities", {}).get("drop") == ["ALL"], at
            assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", at
            resources = container.get("resources", {})
            assert resources.get("requests", {}).get("cpu"), f"{at} requests no CPU"
            assert resources.get("requests", {}).get("memory"), f"{at} requests no memory"
            assert resources.get("limits", {}).get("memory"), f"{at} has no memory limit"


@ci
def test_rushes_pods_write_only_to_tmp_and_the_data_dir(name: str) -> None:
    for where, _, spec in pod_specs(render_ci(name)):
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in spec["containers"]:
            if not container["image"].split("/")[-1].startswith("rushes-"):
                continue
            mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], where
            assert "emptyDir" in volumes[mounts["/data"]], where
            writable = [path for path, volume in mounts.items() if path not in ("/tmp", "/data", "/dev/shm")]
            for mount in container.get("volumeMounts", []):
                if mount["mountPath"] in writable:
                    assert mount.get("readOnly") is True, f"{where}: {mount['mountPath']} is writable"


@ci
def test_service_accounts_mount_no_token(name: str) -> None:
    rendered = render_ci(name)
    accounts = rendered.of_kind("ServiceAccount")
    assert accounts
    for account in accounts:
        assert account["automountServiceAccountToken"] is False


@ci
def test_secrets_reach_pods_only_through_secrets(name: str) -> None:
    """No secret value sits in a ConfigMap, and secret settings are never plain env values."""
    rendered = render_ci(name)
    secrets = [value for secret in rendered.of_kind("Secret") for value in _decoded(secret).values()]
    values = rendered.values
    plain = [
        values.get("database", {}).get("url", ""),
        _password(values.get("database", {}).get("url", "")),
        values.get("s3", {}).get("accessKey", ""),
        values.get("s3", {}).get("secretKey", ""),
        values.get("webhooks", {}).get("signingKey", ""),
        values.get("metrics", {}).get("token", ""),
        values.get("billing", {}).get("stripeApiKey", ""),
        values.get("billing", {}).get("webhookSecret", ""),
    ]
    watched = [value for value in [*secrets, *plain] if len(value) >= 6 and value not in ("false", "rushes")]
    assert watched or not rendered.of_kind("Secret"), "nothing secret to look for"
    for config_map in rendered.of_kind("ConfigMap"):
        data = config_map.get("data", {})
        assert not SECRET_SETTINGS & set(data), (
            f"ConfigMap {config_map['metadata']['name']} holds secret settings"
        )
        text = json.dumps(data)
        for value in watched:
            assert value not in text, f"a secret value is in ConfigMap {config_map['metadata']['name']}"
    for where, _, spec in pod_specs(rendered):
        for container in containers(spec):
            for env_name, entry in env_of(container).items():
                if env_name in SECRET_SETTINGS or env_name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (
                        f"{where}: {env_name} is not from a Secret"
                    )


def _decoded(secret: Obj) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def _password(url: str) -> str:
    found = re.match(r"^[^:]+://[^:]+:([^@]+)@", url)
    return found.group(1) if found else ""


def test_existing_secrets_are_used_and_no_secret_is_written() -> None:
    rendered = render_ci("production")
    assert rendered.of_kind("Secret") == []
    api = rendered.get("Deployment", "rushes-api")["spec"]["template"]["spec"]["containers"][0]
    refs = {
        name: entry["valueFrom"]["secretKeyRef"]
        for name, entry in env_of(api).items()
        if "valueFrom" in entry
    }
    assert refs["RUSHES_DATABASE__URL"] == {"name": "rushes-database", "key": "database-url"}
    assert refs["RUSHES_STORAGE__S3_ACCESS_KEY"] == {"name": "rushes-s3", "key": "s3-access-key"}
    assert refs["RUSHES_STORAGE__S3_SECRET_KEY"] == {"name": "rushes-s3", "key": "s3-secret-key"}
    assert refs["RUSHES_WEBHOOKS__SIGNING_KEY"] == {"name": "rushes-webhooks", "key": "webhook-signing-key"}
    assert refs["RUSHES_METRICS__TOKEN"] == {"name": "rushes-metrics", "key": "metrics-token"}
    assert refs["RUSHES_BILLING__STRIPE_API_KEY"] == {"name": "rushes-stripe", "key": "stripe-api-key"}
    assert refs["RUSHES_BILLING__WEBHOOK_SECRET"] == {"name": "rushes-stripe", "key": "stripe-webhook-secret"}
    auth = rendered.get("TriggerAuthentication", "rushes-keda-postgresql")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "rushes-database", "key": "keda-connection"}
    ]


def test_generated_secrets_are_long_and_the_same_wherever_used() -> None:
    rendered = render_ci("evaluation")
    app = rendered.secret_data("ci-rushes")
    postgres = rendered.secret_data("ci-rushes-postgresql")["password"]
    minio = rendered.secret_data("ci-rushes-minio")
    assert len(app["webhook-signing-key"]) >= 32
    assert len(app["metrics-token"]) >= 32
    assert len(postgres) >= 24
    assert app["database-url"] == f"postgresql+asyncpg://rushes:{postgres}@ci-rushes-postgresql:5432/rushes"
    assert rendered.secret_data("ci-rushes-migrate")["database-url"] == app["database-url"]
    assert app["keda-connection"].startswith(
        f"postgresql://rushes:{postgres}@ci-rushes-postgresql.rushes.svc:5432/"
    )
    assert (app["s3-access-key"], app["s3-secret-key"]) == (minio["root-user"], minio["root-password"])


def test_keda_connection_is_derived_from_the_sqlalchemy_url() -> None:
    app = render_ci("s3-external-postgresql").secret_data("ci-rushes")
    assert app["database-url"] == ci_values("s3-external-postgresql")["database"]["url"]
    assert (
        app["keda-connection"]
        == "postgresql://rushes:ci-pg-secret-7f3a@pg.example.internal:5432/rushes?sslmode=require"
    )


def test_pods_roll_when_their_configuration_changes() -> None:
    before = render_ci("minimal")
    after = render({**ci_values("minimal"), "config": {"logLevel": "DEBUG"}})

    def checksums(rendered: Rendered) -> dict[str, tuple[str, str]]:
        return {
            where: (meta["annotations"]["checksum/config"], meta["annotations"]["checksum/secret"])
            for where, meta, _ in pod_specs(rendered)
            if not where.startswith("Job/")
        }

    old, new = checksums(before), checksums(after)
    assert old.keys() == new.keys() and old
    for where in old:
        assert old[where][0] != new[where][0], f"{where} would not roll on a config change"


def test_signed_urls_name_the_public_storage_endpoint_only_when_one_is_given() -> None:
    default = render_ci("minimal")
    public = render(
        {
            **ci_values("minimal"),
            "s3": {**ci_values("minimal")["s3"], "publicUrl": "https://media.example.com"},
        }
    )

    def config(rendered: Rendered) -> dict[str, str]:
        fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
        data: dict[str, str] = rendered.get("ConfigMap", fullname)["data"]
        return data

    assert "RUSHES_STORAGE__S3_PUBLIC_URL" not in config(default)
    assert config(public)["RUSHES_STORAGE__S3_PUBLIC_URL"] == "https://media.example.com"


# ------------------------------------------------------------- the processes --


def _container(rendered: Rendered, kind: str, name: str) -> Obj:
    obj = rendered.get(kind, name)
    spec = obj["spec"]["jobTargetRef" if kind == "ScaledJob" else "template"]
    pod: Obj = (spec["template"] if kind == "ScaledJob" else spec)["spec"]
    container: Obj = pod["containers"][0]
    return container


@ci
def test_the_api_serves_on_8000_with_health_probes_and_no_embedded_worker(name: str) -> None:
    rendered = render_ci(name)
    fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
    api = _container(rendered, "Deployment", f"{fullname}-api")
    assert api["args"][:5] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert api["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    config = rendered.get("ConfigMap", fullname)["data"]
    assert [ref["configMapRef"]["name"] for ref in api["envFrom"] if "configMapRef" in ref] == [fullname]
    assert config["RUSHES_WORKER__EMBEDDED"] == "false"
    assert config["RUSHES_SERVER__MIGRATE"] == "false"
    assert config["RUSHES_STORAGE__BACKEND"] == "s3"
    assert "://" not in config["RUSHES_STORAGE__S3_ENDPOINT"]
    assert config["RUSHES_DATA_DIR"] == "/data"
    # Behind the ingress every client would be the proxy's address to sign-in throttling.
    assert config["RUSHES_SERVER__FORWARDED_ALLOW_IPS"] == rendered.merged["config"]["trustedProxies"]
    assert env_of(api).keys() >= SECRET_SETTINGS - OPTIONAL_SECRET_SETTINGS
    service = rendered.get("Service", f"{fullname}-api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


@ci
def test_the_background_roles_run_in_their_own_deployment(name: str) -> None:
    rendered = render_ci(name)
    fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
    background = _container(rendered, "Deployment", f"{fullname}-background")
    # billing among them even when it is off: the role then stops at once.
    assert background["args"] == ["worker", "--roles", "webhooks,billing,cleanup,ingest"]
    assert GPU not in background["resources"].get("limits", {})
    assert background["image"] == _container(rendered, "Deployment", f"{fullname}-api")["image"]


@ci
def test_migrations_run_as_a_hook_before_the_api_starts(name: str) -> None:
    rendered = render_ci(name)
    hooks = [obj for obj in rendered.objects if "helm.sh/hook" in obj["metadata"].get("annotations", {})]
    jobs = [obj for obj in hooks if obj["kind"] == "Job"]
    assert len(jobs) == 1
    job = jobs[0]
    events = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    if rendered.merged["postgresql"]["enabled"]:
        # The in-chart database is a release resource: it exists only after install.
        assert events == {"post-install", "pre-upgrade"}
    else:
        assert events == {"pre-install", "pre-upgrade"}
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert "helm.sh/hook" not in rendered.get("Deployment", _api_name(rendered))["metadata"].get(
        "annotations", {}
    )
    # What the Job needs exists before it: hooks of the same events with a lower weight, or
    # Secrets the operator made beforehand.
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    earlier = {
        (obj["kind"], obj["metadata"]["name"])
        for obj in hooks
        if set(obj["metadata"]["annotations"]["helm.sh/hook"].split(",")) == events
        and int(obj["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
    }
    spec = job["spec"]["template"]["spec"]
    if rendered.merged["serviceAccount"]["create"]:
        assert ("ServiceAccount", spec["serviceAccountName"]) in earlier
    url = env_of(container)["RUSHES_DATABASE__URL"]["valueFrom"]["secretKeyRef"]
    if rendered.merged["database"]["existingSecret"]:
        assert url["name"] == rendered.merged["database"]["existingSecret"]
    else:
        assert ("Secret", url["name"]) in earlier


def _api_name(rendered: Rendered) -> str:
    return f"{rendered.merged.get('fullnameOverride') or f'{RELEASE}-rushes'}-api"


@ci
def test_gpu_pool_workers_request_gpus_and_run_as_the_contract_says(name: str) -> None:
    rendered = render_ci(name)
    keda = rendered.merged["keda"]["enabled"]
    for pool in pools(rendered):
        kind = "ScaledJob" if keda and pool["roles"] == ["train"] else "Deployment"
        worker = _container(rendered, kind, pool_name(rendered, pool["name"]))
        device = pool["device"] or ("cuda" if pool["gpus"] else "cpu")
        expected = ["worker", "--roles", ",".join(pool["roles"]), "--device", device]
        expected += ["--memory", pool["memory"], "--max-jobs", str(pool["maxJobs"])]
        if kind == "ScaledJob":
            expected += ["--exit-when-idle", str(pool["keda"]["exitWhenIdleSeconds"])]
        assert worker["args"] == expected
        limits = worker["resources"]["limits"]
        if pool["gpus"]:
            assert limits[GPU] == pool["gpus"]
            assert worker["image"].split("/")[-1].startswith("rushes-worker:")
        else:
            assert GPU not in limits
    assert any(pool["gpus"] for pool in pools(rendered)) == (name != "evaluation")


@ci
def test_workers_get_time_to_checkpoint_on_sigterm(name: str) -> None:
    rendered = render_ci(name)
    for where, _, spec in pod_specs(rendered):
        if "-worker-" in where:
            # A worker checkpoints its fine-tunes and hands them back within 120 s.
            assert spec["terminationGracePeriodSeconds"] >= 120 + 15, where


@ci
def test_pools_scale_as_their_roles_need(name: str) -> None:
    rendered = render_ci(name)
    keda = rendered.merged["keda"]["enabled"]
    for pool in pools(rendered):
        resource = pool_name(rendered, pool["name"])
        deployments = {obj["metadata"]["name"] for obj in rendered.of_kind("Deployment")}
        if not keda:
            assert rendered.get("Deployment", resource)["spec"]["replicas"] == pool["replicaCount"]
            assert not rendered.of_kind("ScaledJob", "ScaledObject")
        elif pool["roles"] == ["train"]:
            # A Job per worker: scaling in never stops a fine-tune mid-step.
            scaled = rendered.get("ScaledJob", resource)
            assert resource not in deployments
            assert scaled["spec"]["rollout"]["strategy"] == "gradual"
            assert scaled["spec"]["jobTargetRef"]["template"]["spec"]["restartPolicy"] == "Never"
            assert scaled["spec"]["maxReplicaCount"] == pool["keda"]["maxReplicaCount"]
        else:
            scaled = rendered.get("ScaledObject", resource)
            assert scaled["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": resource,
            }
            assert "replicas" not in rendered.get("Deployment", resource)["spec"]
            assert scaled["spec"]["minReplicaCount"] == pool["keda"]["minReplicaCount"]


def _select_parts(tree: Any) -> list[Obj]:
    """Every SELECT ... FROM <table> in a pglast JSON parse tree."""
    found: list[Obj] = []
    if isinstance(tree, dict):
        select = tree.get("SelectStmt")
        if isinstance(select, dict) and select.get("fromClause"):
            found.append(select)
        for value in tree.values():
            found += _select_parts(value)
    elif isinstance(tree, list):
        for item in tree:
            found += _select_parts(item)
    return found


def _nodes(tree: Any, kind: str) -> list[Obj]:
    found: list[Obj] = []
    if isinstance(tree, dict):
        if isinstance(tree.get(kind), dict):
            found.append(tree[kind])
        for value in tree.values():
            found += _nodes(value, kind)
    elif isinstance(tree, list):
        for item in tree:
            found += _nodes(item, kind)
    return found


def _constant(node: Obj) -> str:
    const = node["A_Const"]
    for key in ("sval", "ival", "fval"):
        if key in const:
            return str(next(iter(const[key].values())))
    raise AssertionError(node)


COLUMNS = {
    "fine_tune_job": {"status", "estimated_bytes", "lease_owner"},
    "generation": {"status", "base_id", "lease_owner"},
}


@ci
def test_keda_queries_count_each_pools_own_queue(name: str) -> None:
    """The PostgreSQL scaler's query is real PostgreSQL and reads the right table per pool."""
    rendered = render_ci(name)
    if not rendered.merged["keda"]["enabled"]:
        assert not rendered.of_kind("ScaledJob", "ScaledObject", "TriggerAuthentication")
        return
    for pool in pools(rendered):
        resource = pool_name(rendered, pool["name"])
        kind = "ScaledJob" if pool["roles"] == ["train"] else "ScaledObject"
        (trigger,) = rendered.get(kind, resource)["spec"]["triggers"]
        assert trigger["type"] == "postgresql"
        assert trigger["authenticationRef"]["name"].endswith("-keda-postgresql")
        target = pool["keda"]["targetQueueLength"] or (pool["maxJobs"] if "train" in pool["roles"] else 4)
        assert float(trigger["metadata"]["targetQueryValue"]) == target
        tree = json.loads(pg.parse_sql_json(trigger["metadata"]["query"]))  # fails on anything but valid SQL
        parts = {_nodes(part["fromClause"], "RangeVar")[0]["relname"]: part for part in _select_parts(tree)}
        expected = {"fine_tune_job"} if "train" in pool["roles"] else set()
        expected |= {"generation"} if "generate" in pool["roles"] else set()
        assert set(parts) == expected
        for table, part in parts.items():
            columns = {
                ref["fields"][-1]["String"]["sval"] for ref in _nodes(part["whereClause"], "ColumnRef")
            }
            assert columns <= COLUMNS[table], columns
            # (waiting work this pool can take) OR (work this pool's workers hold)
            where = part["whereClause"]["BoolExpr"]
            assert where["boolop"] == "OR_EXPR"
            waiting, held = (_conditions(branch) for branch in where["args"])
            assert waiting["status"] == ("=", {"QUEUED", "queued"})
            assert held["status"] == ("=", {"RUNNING", "running"})
            assert held.keys() == {"status", "lease_owner"}
            operator, (pattern,) = held["lease_owner"]
            assert operator == "~"
            _assert_owner_pattern_is_the_pools(pattern, resource)
            if table == "fine_tune_job":
                assert waiting == {
                    "status": ("=", {"QUEUED", "queued"}),
                    "estimated_bytes": ("<=", {str(memory_size(pool["memory"]))}),
                }
            elif pool["bases"]:
                assert waiting == {
                    "status": ("=", {"QUEUED", "queued"}),
                    "base_id": ("=", set(pool["bases"])),
                }
            else:
                assert waiting.keys() == {"status"}


def _conditions(branch: Obj) -> dict[str, tuple[str, set[str]]]:
    """`column op constant(s)` conditions of one AND (or a lone condition): column -> (op, constants)."""
    terms = branch["BoolExpr"]["args"] if "BoolExpr" in branch else [branch]
    found: dict[str, tuple[str, set[str]]] = {}
    for term in terms:
        expr = term["A_Expr"]
        column = expr["lexpr"]["ColumnRef"]["fields"][-1]["String"]["sval"]
        right = expr["rexpr"]
        constants = (
            {_constant(item) for item in right["List"]["items"]} if "List" in right else {_constant(right)}
        )
        found[column] = (expr["name"][0]["String"]["sval"], constants)
    return found


def _assert_owner_pattern_is_the_pools(pattern: str, resource: str) -> None:
    """Leases are owned by `<host name>:<pid>:<id>`, and a pod's host name is its name."""
    owner = re.compile(pattern)
    assert owner.match(f"{resource}-7d9c8b5f4-x2k9q:1:0a1b2c3d")  # a Deployment's pod
    assert owner.match(f"{resource}-k2j4h-9xq2z:7:0a1b2c3d:generate")  # a ScaledJob's Job's pod
    assert not owner.match(f"{resource}-big-k2j4h-9xq2z:7:0a1b2c3d")  # another pool, named longer
    assert not owner.match(f"x{resource}-k2j4h-9xq2z:7:0a1b2c3d")


def test_generate_pools_that_name_bases_are_offered_only_those() -> None:
    rendered = render_ci("production")
    render_pool = _container(rendered, "Deployment", "rushes-worker-l40s-render")
    env = env_of(render_pool)
    assert json.loads(env["RUSHES_BASES__FOLDERS"]["value"]) == {
        "wan2.1-t2v-1.3b": "/models/Wan2.1-T2V-1.3B-Diffusers"
    }
    assert env["RUSHES_BASES__TINY"]["value"] == "false"
    train_pool = _container(rendered, "ScaledJob", "rushes-worker-h100-train")
    assert "RUSHES_BASES__FOLDERS" not in env_of(train_pool)
    config = rendered.get("ConfigMap", "rushes")["data"]
    assert set(json.loads(config["RUSHES_BASES__FOLDERS"])) == {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b"}
    for container in (render_pool, train_pool, _container(rendered, "Deployment", "rushes-api")):
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "bases"]
        assert mount == {"name": "bases", "mountPath": "/models", "readOnly": True}


# ------------------------------------------------------------------- network --


@ci
def test_network_policies_let_in_only_what_must_come_in(name: str) -> None:
    rendered = render_ci(name)
    policies = rendered.of_kind("NetworkPolicy")
    fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
    quiet = rendered.get("NetworkPolicy", f"{fullname}-no-ingress")["spec"]
    assert quiet["ingress"] == [] and quiet["policyTypes"] == ["Ingress"]
    (components,) = quiet["podSelector"]["matchExpressions"]
    assert set(components["values"]) == {"worker", "background", "migrations"}
    api = rendered.get("NetworkPolicy", f"{fullname}-api")["spec"]
    assert api["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert ("from" in api["ingress"][0]) == (not rendered.merged["networkPolicy"]["allowExternal"])
    if rendered.merged["postgresql"]["enabled"]:
        db = rendered.get("NetworkPolicy", f"{fullname}-postgresql")["spec"]
        sources = db["ingress"][0]["from"]
        assert {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "rushes", "app.kubernetes.io/instance": RELEASE}
            }
        } in sources
        if rendered.merged["keda"]["enabled"]:
            assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}} in sources
    # Every pod the chart makes is covered by some policy.
    for _, meta, _spec in pod_specs(rendered):
        labels = meta["labels"]
        assert any(_selects(policy["spec"]["podSelector"], labels) for policy in policies), labels


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(expr["key"]) in expr["values"] for expr in selector.get("matchExpressions", []))


# ------------------------------------------------------------------- metrics --


@ci
def test_metrics_are_served_only_when_enabled(name: str) -> None:
    rendered = render_ci(name)
    fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
    enabled = rendered.merged["metrics"]["enabled"]
    assert rendered.get("ConfigMap", fullname)["data"]["RUSHES_METRICS__ENABLED"] == str(enabled).lower()
    for where, _, spec in pod_specs(rendered):
        for container in containers(spec):
            env = env_of(container)
            # The API alone reads the token; workers alone serve on a port of their own.
            assert ("RUSHES_METRICS__TOKEN" in env) == (enabled and where == f"Deployment/{fullname}-api")
            assert ("RUSHES_METRICS__WORKER_PORT" in env) == (enabled and "-worker-" in where)
    policies = {obj["metadata"]["name"] for obj in rendered.of_kind("NetworkPolicy")}
    assert (f"{fullname}-worker-metrics" in policies) == enabled
    if not enabled:
        assert not rendered.of_kind("ServiceMonitor")
        assert all("metrics-token" not in (secret.get("data") or {}) for secret in rendered.of_kind("Secret"))


@ci
def test_every_worker_serves_its_metrics_on_the_metrics_port(name: str) -> None:
    rendered = render_ci(name)
    if not rendered.merged["metrics"]["enabled"]:
        return
    port = rendered.merged["metrics"]["workerPort"]
    keda = rendered.merged["keda"]["enabled"]
    for pool in pools(rendered):
        kind = "ScaledJob" if keda and pool["roles"] == ["train"] else "Deployment"
        worker = _container(rendered, kind, pool_name(rendered, pool["name"]))
        env = env_of(worker)
        assert env["RUSHES_METRICS__WORKER_PORT"]["value"] == str(port)
        assert env["RUSHES_METRICS__WORKER_HOST"]["value"] == "0.0.0.0"
        assert worker["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]


@ci
def test_the_workers_metrics_port_is_the_one_way_into_a_worker(name: str) -> None:
    rendered = render_ci(name)
    if not rendered.merged["metrics"]["enabled"]:
        return
    fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
    policy = rendered.get("NetworkPolicy", f"{fullname}-worker-metrics")["spec"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": rendered.merged["metrics"]["workerPort"], "protocol": "TCP"}]
    assert rule.get("from", []) == rendered.merged["networkPolicy"]["metricsIngressFrom"]
    workers = [meta["labels"] for where, meta, _ in pod_specs(rendered) if "-worker-" in where]
    assert workers
    assert all(_selects(policy["podSelector"], labels) for labels in workers)
    others = [meta["labels"] for where, meta, _ in pod_specs(rendered) if "-worker-" not in where]
    assert not any(_selects(policy["podSelector"], labels) for labels in others)


@ci
def test_service_monitors_scrape_the_api_with_its_token_and_every_worker(name: str) -> None:
    rendered = render_ci(name)
    monitors = {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj
        for obj in rendered.of_kind("ServiceMonitor")
    }
    if not rendered.merged["metrics"]["serviceMonitor"]["enabled"]:
        assert monitors == {}
        return
    assert monitors.keys() == {"api", "worker"}
    labels = rendered.merged["metrics"]["serviceMonitor"]["labels"]
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"].items() >= labels.items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}

    # The API: its Service's http port, with the token the API itself reads.
    (endpoint,) = monitors["api"]["spec"]["endpoints"]
    (service,) = _selected_services(rendered, monitors["api"])
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    token = env_of(_container(rendered, "Deployment", _api_name(rendered)))["RUSHES_METRICS__TOKEN"]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": token["valueFrom"]["secretKeyRef"]}

    # The workers: a Service over every worker pod (ScaledJob ones too), on their metrics port.
    (endpoint,) = monitors["worker"]["spec"]["endpoints"]
    (service,) = _selected_services(rendered, monitors["worker"])
    assert service["spec"]["clusterIP"] == "None"
    (port,) = service["spec"]["ports"]
    assert (endpoint["port"], port["targetPort"]) == ("metrics", "metrics")
    assert monitors["worker"]["spec"]["podTargetLabels"] == ["rushes.dev/pool"]
    selected = [
        where
        for where, meta, _ in pod_specs(rendered)
        if _selects({"matchLabels": service["spec"]["selector"]}, meta["labels"])
    ]
    assert sorted(selected) == sorted(where for where, _, _ in pod_specs(rendered) if "-worker-" in where)


def _selected_services(rendered: Rendered, monitor: Obj) -> list[Obj]:
    return [
        service
        for service in rendered.of_kind("Service")
        if _selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    ]


def test_notes_say_how_to_reach_the_api() -> None:
    notes = render_ci("minimal").notes
    assert "port-forward svc/ci-rushes-api" in notes
    assert "create-admin" in notes
    assert "https://rushes.example.com/" in render_ci("production").notes
    assert "jsonpath='{.data.metrics-token}'" in render_ci("production").notes
    assert "/metrics" not in notes
