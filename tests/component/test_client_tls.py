"""TLS and mutual TLS for real: a throwaway CA, a TLS server on 127.0.0.1:0, both clients, CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from support.scripted_server import ScriptedService, scripted_server
from support.tls_certs import Pki, make_pki

import satchel
from satchel import Tls
from satchel_server.cli import main


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki(server_names=("satchel.internal",))


def server_credentials(pki: Pki, *, require_client_cert: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(pki.server.key, pki.server.cert)],
        root_certificates=pki.ca.cert if require_client_cert else None,
        require_client_auth=require_client_cert,
    )


async def issue(address: str, tls: Tls) -> satchel.Token:
    async with satchel.Client(address, tls=tls, timeout=5, retry=satchel.NO_RETRIES) as client:
        return await client.issue_token("p1")


@pytest.mark.asyncio
async def test_tls_with_the_servers_ca(pki: Pki) -> None:
    creds = server_credentials(pki, require_client_cert=False)
    async with scripted_server(ScriptedService(), creds) as address:
        token = await issue(address, Tls(root_certificates=pki.ca.cert))
        assert token.location.prefix == "players/p1/"
        # The certificate names satchel.internal too: checked when asked for.
        await issue(address, Tls(root_certificates=pki.ca.cert, server_name="satchel.internal"))


@pytest.mark.asyncio
async def test_tls_refuses_an_untrusted_server_or_a_wrong_name(pki: Pki) -> None:
    creds = server_credentials(pki, require_client_cert=False)
    async with scripted_server(ScriptedService(), creds) as address:
        with pytest.raises(satchel.UnavailableError):
            await issue(address, Tls(root_certificates=pki.other_ca.cert))
        with pytest.raises(satchel.UnavailableError):
            await issue(address, Tls(root_certificates=pki.ca.cert, server_name="elsewhere"))


@pytest.mark.asyncio
async def test_mutual_tls(pki: Pki) -> None:
    creds = server_credentials(pki, require_client_cert=True)
    async with scripted_server(ScriptedService(), creds) as address:
        mutual = Tls(pki.ca.cert, certificate_chain=pki.client.cert, private_key=pki.client.key)
        assert (await issue(address, mutual)).credentials.access_key_id == "STS.scripted"
        with pytest.raises(satchel.UnavailableError):
            await issue(address, Tls(root_certificates=pki.ca.cert))  # no client certificate

        def sync_call() -> satchel.Token:
            with satchel.SyncClient(address, tls=mutual, timeout=5) as client:
                return client.issue_token("p2")

        assert (await asyncio.to_thread(sync_call)).location.prefix == "players/p2/"


@pytest.mark.asyncio
async def test_cli_tls_options_reach_the_client(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = pki.write(tmp_path)
    creds = server_credentials(pki, require_client_cert=True)
    async with scripted_server(ScriptedService(), creds) as address:
        argv = [
            "issue",
            "--player",
            "p1",
            "--target",
            address,
            "--tls-ca",
            str(paths["ca_cert"]),
            "--tls-cert",
            str(paths["client_cert"]),
            "--tls-key",
            str(paths["client_key"]),
        ]
        assert await asyncio.to_thread(main, argv) == 0
    assert json.loads(capsys.readouterr().out)["access_key_id"] == "STS.scripted"
