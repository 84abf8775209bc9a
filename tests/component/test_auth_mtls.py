"""mTLS end to end: the client certificate's SAN names the caller; certificates made per run."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from component.auth_fixtures import (
    EU_GRANT,
    EU_KEY,
    US_KEY,
    audit_lines,
    auth_settings,
    bearer,
    caller,
)
from component.emulator_fixtures import emulator
from support.stack import running_stack
from support.tls_certs import Pem, Pki, issue_client, make_pki

from satchel.v1 import token_service_pb2 as pb
from satchel_server.config import GrantSettings, Settings, TlsSettings
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

EU_URI = "spiffe://studio/game-eu"
US_DNS = "game-us.internal"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def mtls_settings(emulator: Emulator, pki: Pki, folder: Path) -> Settings:
    paths = pki.write(folder)
    tls = TlsSettings(
        cert_file=str(paths["server_cert"]),
        key_file=str(paths["server_key"]),
        client_ca_file=str(paths["ca_cert"]),
    )
    callers = (
        caller("game-eu", None, EU_GRANT, cert_sans=(EU_URI,)),
        caller(
            "game-us",
            US_KEY,
            GrantSettings(scope="dev", permissions=("read",)),
            cert_sans=(US_DNS,),
        ),
    )
    return auth_settings(emulator, folder / "audit.jsonl", callers=callers, tls=tls)


def client_tls(pki: Pki, client: Pem | None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(pki.ca.cert)
    return grpc.ssl_channel_credentials(pki.ca.cert, client.key, client.cert)


async def issue(
    emulator: Emulator,
    settings: Settings,
    credentials: grpc.ChannelCredentials,
    metadata: tuple[tuple[str, str], ...] = (),
    player: str = "eu-1",
) -> grpc.StatusCode:
    async with running_stack(emulator, settings, credentials) as stack:
        try:
            await stack.stub.IssueToken(
                pb.IssueTokenRequest(player_id=player, permissions=[pb.PERMISSION_READ]),
                metadata=metadata,
                timeout=10,
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.asyncio
async def test_a_certificate_uri_or_dns_san_names_the_caller(
    emulator: Emulator, pki: Pki, tmp_path: Path
) -> None:
    settings = mtls_settings(emulator, pki, tmp_path)
    eu = issue_client(pki.ca, "eu-1", uris=(EU_URI,))
    us = issue_client(pki.ca, "us-1", dns_names=(US_DNS,))
    assert await issue(emulator, settings, client_tls(pki, eu)) == grpc.StatusCode.OK
    assert await issue(emulator, settings, client_tls(pki, us), player="x") == grpc.StatusCode.OK
    first, second = audit_lines(tmp_path / "audit.jsonl")
    assert (first["caller"], first["auth"], first["credential"]) == ("game-eu", "cert", EU_URI)
    assert (second["caller"], second["auth"], second["credential"]) == ("game-us", "cert", US_DNS)


@pytest.mark.asyncio
async def test_a_valid_certificate_with_no_mapping_is_unauthenticated(
    emulator: Emulator, pki: Pki, tmp_path: Path
) -> None:
    settings = mtls_settings(emulator, pki, tmp_path)
    # A DNS SAN equal to a mapped URI's text must not match it: SAN types are kept apart.
    strangers = (
        pki.client,  # no SANs at all
        issue_client(pki.ca, "eu-2", uris=("spiffe://studio/game-eu-2",)),
        issue_client(pki.ca, "eu-3", dns_names=("game-eu.internal",)),
    )
    for client in strangers:
        code = await issue(emulator, settings, client_tls(pki, client))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    lines = audit_lines(tmp_path / "audit.jsonl")
    assert [line["reason"] for line in lines] == [
        "no bearer key or SAN",
        "certificate names no caller",
        "certificate names no caller",
    ]


@pytest.mark.asyncio
async def test_a_certificate_from_an_unknown_ca_or_none_never_reaches_a_handler(
    emulator: Emulator, pki: Pki, tmp_path: Path
) -> None:
    settings = mtls_settings(emulator, pki, tmp_path)
    other = make_pki()  # a whole other CA, trusted by nobody here
    impostor = issue_client(other.ca, "eu-1", uris=(EU_URI,))
    for credentials in (client_tls(pki, impostor), client_tls(pki, None)):
        # The handshake fails: gRPC reports it as UNAVAILABLE before any call is made.
        code = await issue(emulator, settings, credentials, metadata=bearer(US_KEY))
        assert code == grpc.StatusCode.UNAVAILABLE
    assert audit_lines(tmp_path / "audit.jsonl") == []


@pytest.mark.asyncio
async def test_keys_and_certificates_together(emulator: Emulator, pki: Pki, tmp_path: Path) -> None:
    settings = mtls_settings(emulator, pki, tmp_path)
    eu = client_tls(pki, issue_client(pki.ca, "eu-1", uris=(EU_URI,)))
    unmapped = client_tls(pki, pki.client)
    # An unmapped certificate plus a valid key: the key names the caller.
    assert await issue(emulator, settings, unmapped, bearer(US_KEY), "x") == grpc.StatusCode.OK
    # A certificate and a key that name different callers: refused.
    code = await issue(emulator, settings, eu, bearer(US_KEY))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # A mapped certificate with a bad key: refused, not silently served by the certificate.
    code = await issue(emulator, settings, eu, bearer(EU_KEY))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    reasons = [line["reason"] for line in audit_lines(tmp_path / "audit.jsonl")]
    assert reasons[0] is None
    assert reasons[1] == "key names 'game-us', certificate 'game-eu'"
    assert reasons[2].startswith("unknown or retired key id")
