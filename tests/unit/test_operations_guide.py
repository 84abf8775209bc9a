"""docs/operations.md keeps up with the code: every environment variable, the metric that
shows the STS budget saturating, and the capacity arithmetic from the defaults."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from satchel_server.config import CacheSettings, ScopeSettings, StsSettings

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "operations.md").read_text()
ENV_NAME = re.compile(r"\b(?:SATCHEL|ALIBABA_CLOUD)_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
# The credential chain's variables, read by the official library as well as by Satchel.
CHAIN = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_CREDENTIALS_URI",
    "ALIBABA_CLOUD_ECS_METADATA",
}


def section(title: str) -> str:
    match = re.search(rf"^#+ [^\n]*{re.escape(title)}[^\n]*\n(.*?)(?=^#+ |\Z)", GUIDE, re.M | re.S)
    assert match, f"no section {title!r} in docs/operations.md"
    return match.group(1)


def env_table() -> set[str]:
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|", section("Environment variables"), re.M)
    return set(rows)


def names_in_code() -> set[str]:
    found: set[str] = set()
    for root in (REPO / "service", REPO / "clients" / "python" / "satchel"):
        for path in root.rglob("*.py"):
            found |= set(ENV_NAME.findall(path.read_text()))
    return found


def test_every_environment_variable_the_code_reads_is_in_one_table() -> None:
    code = names_in_code()
    assert code  # the scan finds the names config.py reads
    missing = (code | CHAIN) - env_table()
    assert not missing, f"add to docs/operations.md, Environment variables: {sorted(missing)}"


@pytest.mark.parametrize(
    "title",
    [
        "Kubernetes",
        "Endpoints",
        "Bucket CORS",
        "Block Public Access",
        "TLS certificates",
        "Sizing",
        "Clock",
        "STS capacity planning",
        "Troubleshooting",
        "satchel doctor",
    ],
)
def test_the_guide_has_the_section(title: str) -> None:
    assert section(title).strip()


def test_capacity_arithmetic_follows_the_defaults() -> None:
    ttl = next(f for f in dataclasses.fields(ScopeSettings) if f.name == "ttl_default_seconds")
    budget = StsSettings().budget_per_second
    interval = ttl.default * CacheSettings().min_remaining_share
    players = int(budget * interval)
    text = section("STS capacity planning")
    assert f"{players:,} players" in text
    assert f"{budget:g}/s x ({ttl.default} s x {CacheSettings().min_remaining_share:g})" in text


def test_the_saturation_metric_is_one_satchel_exposes() -> None:
    metrics = (REPO / "service" / "satchel_server" / "observability" / "metrics.py").read_text()
    named = re.findall(r"`(satchel_[a-z_]+)", section("STS capacity planning"))
    assert "satchel_sts_budget_tokens" in named
    for name in named:
        assert name.removesuffix("_total") in metrics, name


def test_the_vpc_sts_endpoint_is_documented() -> None:
    assert "https://sts-vpc.REGION.aliyuncs.com" in section("Endpoints")
    assert "oss-REGION-internal.aliyuncs.com" in section("Endpoints")


def test_the_guide_says_why_the_bucket_needs_block_public_access() -> None:
    # A player's write credential can set x-oss-object-acl on its uploads (the emulator
    # grants it under oss:PutObject, as OSS's references say): only the bucket setting
    # keeps such an ACL from making a save public.
    text = section("Block Public Access")
    assert "`x-oss-object-acl`" in text
    assert "PutBucketPublicAccessBlock" in text
