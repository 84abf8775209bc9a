"""The official OSS SDKs, unmodified, against the emulator: oss2 (V1, V4, StsAuth) and
alibabacloud-oss-v2 doing put, get, head, delete, list, multipart and presign."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import urllib.request
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
from component.emulator_fixtures import (
    BUCKET,
    assume_role,
    emulator,
    oss2_bucket,
    player_policy,
    v2_client,
)

from satchel_server.emulator.runner import Emulator
from satchel_server.emulator.store import multipart_etag, simple_etag

__all__ = ["emulator"]

PART = 100 * 1024  # OSS's minimum part size


def _player_creds(emu: Emulator, player: str = "12") -> dict[str, str]:
    creds: dict[str, str] = assume_role(emu, policy=player_policy(player))["Credentials"]
    return creds


def _oss2_round_trip(bucket: Any, prefix: str) -> None:
    key = f"{prefix}dir/hello world+ü.txt"
    result = bucket.put_object(key, b"hello", headers={"x-oss-meta-color": "blue"})
    assert result.etag == simple_etag(b"hello").strip('"')
    got = bucket.get_object(key)
    assert got.read() == b"hello"
    assert got.headers["x-oss-meta-color"] == "blue"
    head = bucket.head_object(key)
    assert head.content_length == 5
    assert head.etag == result.etag
    ranged = bucket.get_object(key, byte_range=(1, 3))
    assert ranged.read() == b"ell"
    assert ranged.status == 206
    bucket.put_object(f"{prefix}dir/sub/a", b"a")
    listed = bucket.list_objects(prefix=f"{prefix}dir/", delimiter="/")
    assert [o.key for o in listed.object_list] == [key]
    assert listed.prefix_list == [f"{prefix}dir/sub/"]
    listed_v2 = bucket.list_objects_v2(prefix=f"{prefix}dir/", max_keys=1)
    assert listed_v2.is_truncated
    rest = bucket.list_objects_v2(
        prefix=f"{prefix}dir/", continuation_token=listed_v2.next_continuation_token
    )
    assert [o.key for o in listed_v2.object_list + rest.object_list] == [
        key,
        f"{prefix}dir/sub/a",
    ]
    for method, body in (("PUT", b"presigned"), ("GET", None)):
        # Content-Type is signed (urllib would otherwise add its own form type).
        headers = {"Content-Type": "text/plain"} if body else {}
        url = bucket.sign_url(method, f"{prefix}presigned", 60, headers=headers)
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
            if method == "GET":
                assert response.read() == b"presigned"
    bucket.delete_object(key)
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(key)


def _oss2_multipart(bucket: Any, prefix: str, tmp_path: Path) -> None:
    data = bytes(range(256)) * (PART * 2 // 256) + b"tail"
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    key = f"{prefix}big.bin"
    oss2.resumable_upload(
        bucket,
        key,
        str(path),
        multipart_threshold=PART,
        part_size=PART,
        num_threads=2,
        store=oss2.ResumableStore(root=str(tmp_path)),
    )
    assert bucket.get_object(key).read() == data
    assert bucket.head_object(key).etag.endswith("-3")
    upload_id = bucket.init_multipart_upload(f"{prefix}aborted").upload_id
    bucket.upload_part(f"{prefix}aborted", upload_id, 1, b"x")
    assert [p.part_number for p in bucket.list_parts(f"{prefix}aborted", upload_id).parts] == [1]
    bucket.abort_multipart_upload(f"{prefix}aborted", upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(f"{prefix}aborted", upload_id)


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_oss2_ram_user(emulator: Emulator, v4: bool, tmp_path: Path) -> None:
    bucket = oss2_bucket(emulator, v4=v4)
    await asyncio.to_thread(_oss2_round_trip, bucket, "root/")
    await asyncio.to_thread(_oss2_multipart, bucket, "root/", tmp_path)


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_oss2_sts_player_folder(emulator: Emulator, v4: bool, tmp_path: Path) -> None:
    creds = await asyncio.to_thread(_player_creds, emulator)
    bucket = oss2_bucket(emulator, creds, v4=v4)
    await asyncio.to_thread(_oss2_round_trip, bucket, "players/12/")
    await asyncio.to_thread(_oss2_multipart, bucket, "players/12/", tmp_path)


def _v2_round_trip(client: oss_v2.Client, prefix: str) -> None:
    key = f"{prefix}v2/obj.txt"
    put = client.put_object(oss_v2.PutObjectRequest(bucket=BUCKET, key=key, body=b"v2 data"))
    assert put.etag == simple_etag(b"v2 data")
    got = client.get_object(oss_v2.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.read() == b"v2 data"
    head = client.head_object(oss_v2.HeadObjectRequest(bucket=BUCKET, key=key))
    assert head.content_length == 7
    listed = client.list_objects_v2(
        oss_v2.ListObjectsV2Request(bucket=BUCKET, prefix=f"{prefix}v2/")
    )
    assert [o.key for o in listed.contents or []] == [key]
    presigned = client.presign(
        oss_v2.GetObjectRequest(bucket=BUCKET, key=key), expires=dt.timedelta(minutes=5)
    )
    with urllib.request.urlopen(presigned.url) as response:
        assert response.read() == b"v2 data"
    client.delete_object(oss_v2.DeleteObjectRequest(bucket=BUCKET, key=key))
    with pytest.raises(oss_v2.exceptions.OperationError) as info:
        client.head_object(oss_v2.HeadObjectRequest(bucket=BUCKET, key=key))
    error = info.value.unwrap()
    assert isinstance(error, oss_v2.exceptions.ServiceError)
    assert error.status_code == 404


def _v2_multipart(client: oss_v2.Client, prefix: str) -> None:
    key = f"{prefix}v2/multi.bin"
    init = client.initiate_multipart_upload(
        oss_v2.InitiateMultipartUploadRequest(bucket=BUCKET, key=key)
    )
    chunks = [b"a" * PART, b"b" * 10]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        result = client.upload_part(
            oss_v2.UploadPartRequest(
                bucket=BUCKET, key=key, upload_id=init.upload_id, part_number=number, body=chunk
            )
        )
        parts.append(oss_v2.UploadPart(part_number=number, etag=result.etag))
    done = client.complete_multipart_upload(
        oss_v2.CompleteMultipartUploadRequest(
            bucket=BUCKET,
            key=key,
            upload_id=init.upload_id,
            complete_multipart_upload=oss_v2.CompleteMultipartUpload(parts=parts),
        )
    )
    assert done.etag == multipart_etag([simple_etag(c) for c in chunks])
    got = client.get_object(oss_v2.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.read() == b"".join(chunks)
    # The SDK's own uploader switches to multipart for large bodies.
    uploader = client.uploader(part_size=PART, parallel_num=2)
    data = b"u" * (PART * 2 + 5)
    uploader.upload_from(
        oss_v2.PutObjectRequest(bucket=BUCKET, key=f"{prefix}v2/uploaded.bin"), io.BytesIO(data)
    )
    got = client.get_object(oss_v2.GetObjectRequest(bucket=BUCKET, key=f"{prefix}v2/uploaded.bin"))
    assert got.body.read() == data


@pytest.mark.asyncio
async def test_oss_v2_ram_user(emulator: Emulator) -> None:
    client = v2_client(emulator)
    await asyncio.to_thread(_v2_round_trip, client, "root/")
    await asyncio.to_thread(_v2_multipart, client, "root/")


@pytest.mark.asyncio
async def test_oss_v2_sts_player_folder(emulator: Emulator) -> None:
    creds = await asyncio.to_thread(_player_creds, emulator)
    client = v2_client(emulator, creds)
    await asyncio.to_thread(_v2_round_trip, client, "players/12/")
    await asyncio.to_thread(_v2_multipart, client, "players/12/")


def _list_spaced_prefix(bucket: Any, v2: oss_v2.Client) -> None:
    folder = "players/12/my saves/"
    for name in ("slot 1.dat", "slot+2.dat"):
        bucket.put_object(folder + name, b"save")
    bucket.put_object("players/12/my savesX", b"other")
    expected = [folder + "slot 1.dat", folder + "slot+2.dat"]
    # oss2 (through requests) sends the space as `+` and the plus as `%2B`.
    assert [o.key for o in bucket.list_objects(prefix=folder).object_list] == expected
    assert [o.key for o in bucket.list_objects_v2(prefix=folder).object_list] == expected
    # alibabacloud-oss-v2 sends the space as `%20`.
    listed = v2.list_objects_v2(oss_v2.ListObjectsV2Request(bucket=BUCKET, prefix=folder))
    assert [o.key for o in listed.contents or []] == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_list_a_prefix_with_a_space(emulator: Emulator, v4: bool) -> None:
    """The player's policy allows ListObjects only under `players/12/`: the prefix must
    reach the RAM check, and the listing, decoded as OSS decodes it."""
    creds = await asyncio.to_thread(_player_creds, emulator)
    bucket = oss2_bucket(emulator, creds, v4=v4)
    await asyncio.to_thread(_list_spaced_prefix, bucket, v2_client(emulator, creds))
