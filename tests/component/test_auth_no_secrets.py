"""A full run with callers, then every log record and audit line is searched for every secret.

Secrets are what a call handed out or presented: AccessKeySecrets, SecurityTokens, URL
signatures and tokens, POST form signatures, bearer keys (right and wrong) and the RAM
user's own secret. Only public parts (AccessKeyIds, key ids) may appear.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import grpc
import pytest
from component.auth_fixtures import (
    DEFAULT_CALLERS,
    EU_GRANT,
    EU_KEY,
    EU_OLD_KEY,
    audit_lines,
    auth_settings,
    bearer,
)
from component.emulator_fixtures import emulator
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.emulator import accounts as dev_account
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

SECRET_FIELDS = {
    "signature",
    "x-oss-signature",
    "security-token",
    "x-oss-security-token",
    "policy",
}
ALL = [pb.PERMISSION_READ, pb.PERMISSION_WRITE, pb.PERMISSION_LIST]


def secrets_of_presigned(reply: pb.PresignObjectResponse) -> set[str]:
    found = {urlsplit(reply.url).query} if urlsplit(reply.url).query else set()
    fields = [*parse_qsl(urlsplit(reply.url).query), *reply.form_fields.items()]
    found |= {value for name, value in fields if name.lower() in SECRET_FIELDS}
    return found


async def refusal(stack: Stack, request: Any, metadata: Any) -> str:
    is_token = isinstance(request, pb.IssueTokenRequest)
    rpc: Any = stack.stub.IssueToken if is_token else stack.stub.PresignObject
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rpc(request, metadata=metadata, timeout=10)
    return caught.value.code().name


@pytest.mark.asyncio
async def test_no_secret_token_or_signature_reaches_any_log_or_audit_line(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    audit_file = tmp_path / "audit.jsonl"
    eu = dataclasses.replace(
        DEFAULT_CALLERS[0],
        rate_per_second=0.001,
        burst=11,  # exactly the successful calls below
        scopes={"dev": dataclasses.replace(EU_GRANT, methods=("GET", "PUT", "HEAD", "POST"))},
    )
    settings = auth_settings(emulator, audit_file, callers=(eu, DEFAULT_CALLERS[1]))
    forged = EU_KEY.key[:-8] + ("0" * 8 if not EU_KEY.key.endswith("0" * 8) else "1" * 8)
    secrets = {dev_account.DEV_ACCESS_KEY_SECRET, EU_KEY.key, forged, EU_OLD_KEY.key}
    secrets |= {key.rsplit("_", 1)[1] for key in (EU_KEY.key, forged, EU_OLD_KEY.key)}
    public: set[str] = set()
    async with running_stack(emulator, settings) as stack:
        auth = bearer(EU_KEY)
        for player, permissions in (("eu-1", ALL), ("eu-1", ALL), ("eu-2", [pb.PERMISSION_READ])):
            reply = await stack.stub.IssueToken(
                pb.IssueTokenRequest(player_id=player, permissions=permissions),
                metadata=auth,
                timeout=10,
            )
            secrets |= {reply.credentials.access_key_secret, reply.credentials.security_token}
            public.add(reply.credentials.access_key_id)
        for method in (pb.HTTP_METHOD_GET, pb.HTTP_METHOD_PUT, pb.HTTP_METHOD_HEAD):
            for key in ("save.dat", "replays/r1.bin"):
                length = 10 if method == pb.HTTP_METHOD_PUT else None
                presigned = await stack.stub.PresignObject(
                    pb.PresignObjectRequest(
                        player_id="eu-1", key=key, method=method, content_length=length
                    ),
                    metadata=auth,
                    timeout=10,
                )
                secrets |= secrets_of_presigned(presigned)
        form = await stack.stub.PresignObject(
            pb.PresignObjectRequest(player_id="eu-1", key="upload.bin", method=pb.HTTP_METHOD_POST),
            metadata=auth,
            timeout=10,
        )
        secrets |= secrets_of_presigned(form)
        batch = await stack.stub.PresignObjects(
            pb.PresignObjectsRequest(
                player_id="eu-1",
                items=[
                    pb.PresignItem(key="gallery/1.png", method=pb.HTTP_METHOD_GET),
                    pb.PresignItem(
                        key="gallery/2.png", method=pb.HTTP_METHOD_PUT, content_length=9
                    ),
                    pb.PresignItem(key="gallery/3.png", method=pb.HTTP_METHOD_POST),
                    pb.PresignItem(key="gallery/4.png", method=pb.HTTP_METHOD_DELETE),
                ],
            ),
            metadata=auth,
            timeout=10,
        )
        assert [r.WhichOneof("outcome") for r in batch.results] == ["presigned"] * 3 + ["error"]
        for result in batch.results[:3]:
            secrets |= secrets_of_presigned(result.presigned)
        refusals = [
            (pb.IssueTokenRequest(player_id="eu-1"), bearer(forged)),
            (pb.IssueTokenRequest(player_id="eu-1"), bearer(EU_OLD_KEY)),
            (pb.IssueTokenRequest(player_id="eu-1", scope="other"), auth),
            (pb.IssueTokenRequest(player_id="eu-1*"), auth),
            (
                pb.PresignObjectRequest(player_id="eu-1", key="k", method=pb.HTTP_METHOD_DELETE),
                auth,
            ),
            (pb.IssueTokenRequest(player_id="eu-1"), auth),  # the caller's burst is spent by now
        ]
        codes = [await refusal(stack, request, metadata) for request, metadata in refusals]
    assert codes == [
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "INVALID_ARGUMENT",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
    ]
    lines = audit_file.read_text()
    assert len(audit_lines(audit_file)) == 3 + 6 + 1 + 4 + 6  # one line per decision
    records = "\n".join(
        f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
    )
    everything = lines + "\n" + records
    secrets.discard("")
    assert len(secrets) > 20  # credentials, URL tokens and signatures, form fields, keys
    leaked = sorted(
        secret[:12] + "..."
        for secret in secrets
        if secret in everything or quote(secret, safe="") in everything
    )
    assert leaked == []
    # The search would have found them: the public parts are there.
    assert all(access_key_id in lines for access_key_id in public)
    assert EU_KEY.key_id in lines
