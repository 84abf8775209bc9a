"""Every operation in the emulator's route table, and every signed sub-resource it refuses,
sent to a live emulator: each operation is checked under its own RAM action (denied without
it, done with it), and the object's bytes are checked after every call."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from component.emulator_fixtures import BUCKET, assume_role, emulator

from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_routes import HONOURED, REFUSED, ROUTES, SELECTORS
from satchel_server.emulator.runner import Emulator
from satchel_server.emulator.store import Extras
from satchel_server.signing import (
    OssRequest,
    PostPolicyRequest,
    SigningCredentials,
    post_form_v1,
    sign_header_v1,
)
from satchel_server.signing.encoding import encode_query, pct_path

__all__ = ["emulator"]

KEY = "players/12/save.dat"
LINK = "players/12/link"
SOURCE = "players/12/source.dat"
ORIGINAL = b"the original save"
SOURCE_BYTES = b"bytes of the source object"
PART = b"one part"
TAGGING_XML = b"<Tagging><TagSet><Tag><Key>level</Key><Value>7</Value></Tag></TagSet></Tagging>"
DELETE_XML = f"<Delete><Object><Key>{KEY}</Key></Object></Delete>".encode()


@dataclass(frozen=True)
class Case:
    """One call of an operation on the player's folder, and what it must leave behind."""

    method: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    key: str | None = KEY  # None: a bucket-level request
    status: int = 200
    code: str = ""  # the error code when status is one
    after: bytes | None = ORIGINAL  # KEY's bytes afterwards; None: KEY is gone
    upload: bool = False  # add the uploadId of a fresh upload on KEY (with part 1)


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


# One case per operation of the route table (its row, or its copy variant).
CASES: Mapping[str, Case] = {
    "PutObject": Case("PUT", body=b"new bytes", after=b"new bytes"),
    "CopyObject": Case(
        "PUT", headers={"x-oss-copy-source": f"/{BUCKET}/{SOURCE}"}, after=SOURCE_BYTES
    ),
    "GetObject": Case("GET", query={"response-content-type": "text/plain"}),
    "HeadObject": Case("HEAD"),
    "DeleteObject": Case("DELETE", status=204, after=None),
    "GetObjectMeta": Case("HEAD", query={"objectMeta": ""}),
    "PutObjectACL": Case("PUT", query={"acl": ""}, headers={"x-oss-object-acl": "private"}),
    "GetObjectACL": Case("GET", query={"acl": ""}),
    "PutObjectTagging": Case("PUT", query={"tagging": ""}, body=TAGGING_XML),
    "GetObjectTagging": Case("GET", query={"tagging": ""}),
    "DeleteObjectTagging": Case("DELETE", query={"tagging": ""}, status=204),
    "PutSymlink": Case(
        "PUT", query={"symlink": ""}, headers={"x-oss-symlink-target": KEY}, key=LINK
    ),
    "GetSymlink": Case("GET", query={"symlink": ""}, key=LINK),
    # Every emulated object is Standard: OSS refuses to restore it, after the RAM check.
    "RestoreObject": Case("POST", query={"restore": ""}, status=400, code="OperationNotSupported"),
    "InitiateMultipartUpload": Case("POST", query={"uploads": ""}),
    "UploadPart": Case("PUT", query={"partNumber": "2"}, body=b"part two", upload=True),
    "UploadPartCopy": Case(
        "PUT",
        query={"partNumber": "2"},
        headers={"x-oss-copy-source": f"/{BUCKET}/{SOURCE}"},
        upload=True,
    ),
    "ListParts": Case("GET", upload=True),
    "CompleteMultipartUpload": Case(
        "POST", headers={"x-oss-complete-all": "yes"}, upload=True, after=PART
    ),
    "AbortMultipartUpload": Case("DELETE", status=204, upload=True),
    "ListObjects": Case("GET", query={"prefix": "players/12/"}, key=None),
    "ListMultipartUploads": Case("GET", query={"uploads": ""}, key=None),
    "DeleteMultipleObjects": Case(
        "POST",
        query={"delete": ""},
        headers={"Content-MD5": _md5(DELETE_XML)},
        body=DELETE_XML,
        key=None,
        after=None,
    ),
    "PostObject": Case("POST", key=None, status=204, after=b"posted"),
    "GetBucketLocation": Case("GET", query={"location": ""}, key=None),
    # The fixture's bucket has no CORS rule: OSS says so, once the RAM check passes.
    "GetBucketCors": Case(
        "GET", query={"cors": ""}, key=None, status=404, code="NoSuchCORSConfiguration"
    ),
}


def _operations() -> dict[str, str]:
    """Operation name -> RAM action, for every operation the route table offers."""
    names = {route.operation: route.action for route in ROUTES.values()}
    names.update({route.copy[0]: route.action for route in ROUTES.values() if route.copy})
    return names


# The action each operation needs on its target, from OSS's API reference (a copy also
# reads its source with oss:GetObject; see the tests with the SDKs).
DOCUMENTED_ACTIONS = {
    "PutObject": "oss:PutObject",
    "CopyObject": "oss:PutObject",
    "GetObject": "oss:GetObject",
    "HeadObject": "oss:GetObject",
    "DeleteObject": "oss:DeleteObject",
    "GetObjectMeta": "oss:GetObject",
    "PutObjectACL": "oss:PutObjectAcl",
    "GetObjectACL": "oss:GetObjectAcl",
    "PutObjectTagging": "oss:PutObjectTagging",
    "GetObjectTagging": "oss:GetObjectTagging",
    "DeleteObjectTagging": "oss:DeleteObjectTagging",
    "PutSymlink": "oss:PutObject",
    "GetSymlink": "oss:GetObject",
    "RestoreObject": "oss:RestoreObject",
    "InitiateMultipartUpload": "oss:PutObject",
    "UploadPart": "oss:PutObject",
    "UploadPartCopy": "oss:PutObject",
    "ListParts": "oss:ListParts",
    "CompleteMultipartUpload": "oss:PutObject",
    "AbortMultipartUpload": "oss:AbortMultipartUpload",
    "ListObjects": "oss:ListObjects",
    "ListMultipartUploads": "oss:ListMultipartUploads",
    "DeleteMultipleObjects": "oss:DeleteObject",
    "PostObject": "oss:PutObject",
    "GetBucketLocation": "oss:GetBucketLocation",
    "GetBucketCors": "oss:GetBucketCors",
}


def test_every_operation_has_its_documented_action_and_a_case() -> None:
    assert _operations() == DOCUMENTED_ACTIONS
    assert set(CASES) == set(DOCUMENTED_ACTIONS)


def _session_policy(denied: str | None) -> str:
    resources = [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/players/12/*"]
    statements = [{"Effect": "Allow", "Action": "oss:*", "Resource": resources}]
    if denied is not None:
        statements.append({"Effect": "Deny", "Action": denied, "Resource": resources})
    return json.dumps({"Version": "1", "Statement": statements})


def _credentials(emu: Emulator, denied: str | None) -> SigningCredentials:
    raw = assume_role(emu, policy=_session_policy(denied))["Credentials"]
    return SigningCredentials(raw["AccessKeyId"], raw["AccessKeySecret"], raw["SecurityToken"])


def _fresh_objects(emu: Emulator) -> dict[str, str]:
    """KEY, SOURCE, LINK -> KEY, and an upload on KEY with part 1: the query it adds."""
    store = emu.state.store
    for key in (KEY, LINK):
        store.delete(BUCKET, key)
    store.put(BUCKET, KEY, ORIGINAL, extras=Extras("application/octet-stream"), now=1.0)
    store.put(BUCKET, SOURCE, SOURCE_BYTES, extras=Extras("text/plain"), now=1.0)
    store.put(BUCKET, LINK, b"", extras=Extras(""), now=1.0, symlink_target=KEY)
    upload = store.initiate(BUCKET, KEY, extras=Extras("application/octet-stream"), now=1.0)
    store.upload_part(BUCKET, upload.upload_id, 1, PART, 1.0)
    return {"uploadId": upload.upload_id}


def _bytes_of_key(emu: Emulator) -> bytes | None:
    try:
        return emu.state.store.get(BUCKET, KEY)[1]
    except OssError:
        return None


async def _send(
    emu: Emulator, case: Case, creds: SigningCredentials | None, upload: Mapping[str, str]
) -> tuple[int, str]:
    query = {**case.query, **(upload if case.upload else {})}
    if case.method == "POST" and case.key is None and not query:
        return await _post_form(emu, creds)
    headers = dict(case.headers)
    if creds is not None:
        signed = sign_header_v1(
            OssRequest(
                method=case.method,
                bucket=BUCKET,
                key=case.key,
                credentials=creds,
                now=datetime.now(UTC),
                query=query,
                headers=headers,
            )
        )
        headers.update(signed.headers)
    path = pct_path(case.key) if case.key else ""
    items = encode_query(query)
    url = f"{emu.oss_url}/{BUCKET}/{path}" + ("?" + "&".join(items) if items else "")
    async with (
        aiohttp.ClientSession(skip_auto_headers={"Content-Type"}) as session,
        session.request(case.method, url, data=case.body, headers=headers) as response,
    ):
        return response.status, _error_code(response, await response.read())


async def _post_form(emu: Emulator, creds: SigningCredentials | None) -> tuple[int, str]:
    assert creds is not None
    policy = PostPolicyRequest(
        bucket=BUCKET, credentials=creds, now=datetime.now(UTC), expires=600, key=KEY
    )
    form = aiohttp.FormData()
    for name, value in post_form_v1(policy).fields.items():
        form.add_field(name, value)
    form.add_field("file", b"posted", filename="upload.bin")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{emu.oss_url}/{BUCKET}", data=form) as response,
    ):
        return response.status, _error_code(response, await response.read())


def _error_code(response: aiohttp.ClientResponse, body: bytes) -> str:
    if response.status < 300:
        return ""
    if "x-oss-err" in response.headers:  # HEAD: the error document, Base64-encoded
        body = base64.b64decode(response.headers["x-oss-err"])
    return ET.fromstring(body).findtext("Code") or ""


@pytest.mark.asyncio
@pytest.mark.parametrize("operation", sorted(CASES))
async def test_operation_under_its_own_action(emulator: Emulator, operation: str) -> None:
    case, action = CASES[operation], _operations()[operation]
    denied, allowed = await asyncio.gather(
        asyncio.to_thread(_credentials, emulator, action),
        asyncio.to_thread(_credentials, emulator, None),
    )
    upload = _fresh_objects(emulator)
    assert await _send(emulator, case, denied, upload) == (403, "AccessDenied")
    assert _bytes_of_key(emulator) == ORIGINAL
    assert await _send(emulator, case, allowed, upload) == (case.status, case.code)
    assert _bytes_of_key(emulator) == case.after


def _unrouted() -> list[tuple[str, str, int, str]]:
    """(sub-resource, method, status, code) for every object call the table does not route:
    refused sub-resources, and sub-resources an operation does not read, get 501
    NotImplemented; a selector with the wrong method gets 405."""
    calls = []
    for name in sorted(REFUSED):
        calls += [(name, method, 501, "NotImplemented") for method in ("GET", "PUT", "POST")]
    for name in sorted(HONOURED - {"security-token"}):
        for method in ("GET", "PUT", "HEAD", "DELETE"):
            if name not in ROUTES[("object", method, None)].honours:
                calls.append((name, method, 501, "NotImplemented"))
    for name in sorted(SELECTORS):
        for method in ("GET", "PUT", "POST", "DELETE"):
            if ("object", method, name) not in ROUTES and any(
                key[0] == "object" and key[2] == name for key in ROUTES
            ):
                calls.append((name, method, 405, "MethodNotAllowed"))
    return calls


@pytest.mark.asyncio
async def test_unrouted_sub_resources_are_refused_and_change_nothing(emulator: Emulator) -> None:
    allowed = await asyncio.to_thread(_credentials, emulator, None)
    upload = _fresh_objects(emulator)
    calls = _unrouted()
    assert {"append", "versionId", "x-oss-process", "lifecycle"} <= {name for name, *_ in calls}
    for name, method, status, code in calls:
        case = Case(method, query={name: "1"}, body=b"would-be bytes")
        assert await _send(emulator, case, allowed, upload) == (status, code), (name, method)
        assert _bytes_of_key(emulator) == ORIGINAL, (name, method)


@pytest.mark.asyncio
async def test_two_selecting_sub_resources_are_refused(emulator: Emulator) -> None:
    allowed = await asyncio.to_thread(_credentials, emulator, None)
    upload = _fresh_objects(emulator)
    case = Case("PUT", query={"acl": "", "tagging": ""}, body=TAGGING_XML)
    assert await _send(emulator, case, allowed, upload) == (400, "InvalidArgument")
    assert _bytes_of_key(emulator) == ORIGINAL


def test_the_operators_guide_lists_every_operation() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = guide[guide.index("## 6. The emulator's OSS") :]
    missing = [name for name in DOCUMENTED_ACTIONS if name not in section]
    assert not missing
    for refused in ("append", "versionId", "x-oss-process", "NotImplemented"):
        assert refused in section
