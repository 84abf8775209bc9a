"""deploy/kubernetes/: valid against the Kubernetes schemas, and consistent with the config."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    CACHE_KEYS_ENV,
    REDIS_PASSWORD_ENV,
    SESSION_NAME_KEY_ENV,
    CacheSettings,
    parse_listen_address,
    settings_from_mapping,
)

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
CONTAINER_CONFIG = REPO / "deploy" / "satchel.container.toml"
# The release the schemas come from (kubernetes-validate ships them: no network needed).
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found.append((path.name, document))
    return found


def manifest(kind: str) -> dict[str, Any]:
    matches = [doc for _, doc in documents() if doc["kind"] == kind]
    assert len(matches) == 1, kind
    return matches[0]


def container() -> dict[str, Any]:
    spec = manifest("Deployment")["spec"]["template"]["spec"]
    (satchel,) = spec["containers"]
    return dict(satchel)


@pytest.mark.parametrize(("name", "document"), documents(), ids=lambda v: str(v)[:40])
def test_every_manifest_validates_strictly(name: str, document: dict[str, Any]) -> None:
    # Strict: an unknown (say, misspelt) field fails instead of being dropped by the API.
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    deployment = manifest("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesytem"
    ] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_kinds_an_operator_needs_are_there() -> None:
    kinds = {document["kind"] for _, document in documents()}
    expected = {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "ConfigMap"}
    assert expected <= kinds


def test_the_pod_runs_non_root_on_a_read_only_root_with_requests_and_limits() -> None:
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    satchel = container()
    assert satchel["securityContext"]["readOnlyRootFilesystem"] is True
    assert satchel["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(satchel["resources"]) == {"requests", "limits"}
    assert set(satchel["resources"]["limits"]) == {"cpu", "memory"}


def test_probes_reach_the_health_port_the_configs_bind_beyond_loopback() -> None:
    satchel = container()
    ports = {
        satchel[probe]["grpc"]["port"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    for path_text in (CONTAINER_CONFIG.read_text(), manifest("ConfigMap")["data"]["satchel.toml"]):
        host, port = parse_listen_address(tomllib.loads(path_text)["server"]["health_listen"])
        assert ports == {port}
        assert host == "0.0.0.0"  # the kubelet connects to the pod IP, never loopback
    assert {"containerPort": ports.pop(), "name": "health"} in satchel["ports"]


def test_the_grace_period_outlasts_the_drain() -> None:
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    config = tomllib.loads(manifest("ConfigMap")["data"]["satchel.toml"])
    pause = int(container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + config["server"]["grace_seconds"]


def test_rrsa_the_service_account_and_the_projected_token_agree() -> None:
    account = manifest("ServiceAccount")
    assert "pod-identity.alibabacloud.com/role-name" in account["metadata"]["annotations"]
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    env = {entry["name"]: entry for entry in container()["env"]}
    token_file = Path(env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]["value"])
    assert {"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"} <= set(env)
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "rrsa-token"]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "sts.aliyuncs.com"
    assert Path(mounts["rrsa-token"]) / source["serviceAccountToken"]["path"] == token_file


def test_fleet_secrets_come_from_secret_references() -> None:
    env = {entry["name"]: entry for entry in container()["env"]}
    for name in (CACHE_KEYS_ENV, REDIS_PASSWORD_ENV, SESSION_NAME_KEY_ENV):
        assert "secretKeyRef" in env[name]["valueFrom"], name
        assert "value" not in env[name]


def test_the_config_map_holds_a_valid_configuration() -> None:
    document = tomllib.loads(manifest("ConfigMap")["data"]["satchel.toml"])
    environ = {
        ACCESS_KEY_ID_ENV: "LTAIexample",
        ACCESS_KEY_SECRET_ENV: "example",
        CACHE_KEYS_ENV: "k1:" + "A" * 43 + "=",
    }
    settings = settings_from_mapping(document, environ, source="configmap")
    assert settings.cache.url
    assert settings.scopes
    assert settings.callers


def _mebibytes(quantity: str) -> float:
    assert quantity.endswith("Mi"), quantity
    return float(quantity.removesuffix("Mi"))


def test_memory_is_sized_from_the_bench_figures() -> None:
    memory = json.loads((REPO / "bench" / "RESULTS.json").read_text())["results"]["memory"]
    at_start = memory["rss_before"] / 2**20
    full_cache = at_start + memory["bytes_per_credential"] * CacheSettings().max_entries / 2**20
    resources = container()["resources"]
    assert _mebibytes(resources["requests"]["memory"]) > at_start
    # The default cache at full size fits, with room for the process's other growth.
    assert _mebibytes(resources["limits"]["memory"]) > 1.2 * full_cache
