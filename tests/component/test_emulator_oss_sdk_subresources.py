"""Object sub-resources through the official SDKs, unmodified, with STS credentials: ACL,
tags, symlinks, restore, objectMeta and UploadPartCopy, each allowed or denied by its own
RAM action, and the object's bytes checked after each call."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
from component.emulator_fixtures import BUCKET, assume_role, emulator, oss2_bucket, v2_client

from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

PART = 100 * 1024  # OSS's minimum part size
KEY = "players/12/save.dat"
SAVE = b"the save"
ATTRIBUTE_ACTIONS = [
    "oss:PutObjectAcl",
    "oss:GetObjectAcl",
    "oss:PutObjectTagging",
    "oss:GetObjectTagging",
    "oss:DeleteObjectTagging",
    "oss:RestoreObject",
]


def _creds(emu: Emulator, actions: list[str]) -> dict[str, str]:
    """A session that may do `actions` in players/12/ only."""
    policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"acs:oss:*:*:{BUCKET}/players/12/*"],
            }
        ],
    }
    creds: dict[str, str] = assume_role(emu, policy=json.dumps(policy))["Credentials"]
    return creds


def _oss_error(call: Any) -> tuple[str, int]:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call()
    return info.value.code, info.value.status


def _oss2_attributes(bucket: Any) -> None:
    bucket.put_object(KEY, SAVE)
    bucket.put_object_acl(KEY, oss2.OBJECT_ACL_PRIVATE)
    assert bucket.get_object_acl(KEY).acl == oss2.OBJECT_ACL_PRIVATE
    assert bucket.get_object(KEY).read() == SAVE
    rule = oss2.models.TaggingRule()
    rule.add("level", "7")
    rule.add("mode", "hard core")
    bucket.put_object_tagging(KEY, oss2.models.Tagging(rule))
    got = bucket.get_object_tagging(KEY).tag_set.tagging_rule
    assert got == {"level": "7", "mode": "hard core"}
    assert bucket.get_object(KEY).read() == SAVE
    bucket.delete_object_tagging(KEY)
    assert bucket.get_object_tagging(KEY).tag_set.tagging_rule == {}
    assert bucket.get_object(KEY).read() == SAVE
    # Tags set with the upload (x-oss-tagging), and the ACL (x-oss-object-acl).
    bucket.put_object(
        KEY, SAVE, headers={"x-oss-tagging": "a=1&b=x%20y", "x-oss-object-acl": "public-read"}
    )
    assert bucket.get_object_tagging(KEY).tag_set.tagging_rule == {"a": "1", "b": "x y"}
    assert bucket.get_object_acl(KEY).acl == oss2.OBJECT_ACL_PUBLIC_READ
    # Symlinks: the link is an object of its own; reading it reads its target.
    link = "players/12/latest"
    bucket.put_symlink(KEY, link)
    assert bucket.get_symlink(link).target_key == KEY
    assert bucket.get_object(link).read() == SAVE
    assert bucket.head_object(link).content_length == len(SAVE)
    assert _oss_error(lambda: bucket.get_symlink(KEY)) == ("NotSymlink", 400)
    # Standard objects are never restored.
    assert _oss_error(lambda: bucket.restore_object(KEY)) == ("OperationNotSupported", 400)
    meta = bucket.get_object_meta(KEY)
    assert meta.content_length == len(SAVE)
    assert bucket.object_exists(KEY)
    assert bucket.get_object(KEY).read() == SAVE


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_oss2_acl_tags_symlink_restore(emulator: Emulator, v4: bool) -> None:
    creds = await asyncio.to_thread(
        _creds, emulator, ["oss:GetObject", "oss:PutObject", *ATTRIBUTE_ACTIONS]
    )
    await asyncio.to_thread(_oss2_attributes, oss2_bucket(emulator, creds, v4=v4))


def _oss2_denied(bucket: Any) -> None:
    bucket.put_object(KEY, SAVE)
    assert _oss_error(lambda: bucket.put_object_acl(KEY, "private")) == ("AccessDenied", 403)
    assert _oss_error(lambda: bucket.get_object_acl(KEY)) == ("AccessDenied", 403)
    tagging = oss2.models.Tagging(oss2.models.TaggingRule())
    assert _oss_error(lambda: bucket.put_object_tagging(KEY, tagging)) == ("AccessDenied", 403)
    assert _oss_error(lambda: bucket.get_object_tagging(KEY)) == ("AccessDenied", 403)
    assert _oss_error(lambda: bucket.delete_object_tagging(KEY)) == ("AccessDenied", 403)
    assert _oss_error(lambda: bucket.restore_object(KEY)) == ("AccessDenied", 403)
    # An upload that also tags needs oss:PutObjectTagging: nothing is written without it.
    tagged = lambda: bucket.put_object(KEY, b"other", headers={"x-oss-tagging": "a=1"})  # noqa: E731
    assert _oss_error(tagged) == ("AccessDenied", 403)
    init = lambda: bucket.init_multipart_upload(KEY, headers={"x-oss-tagging": "a=1"})  # noqa: E731
    assert _oss_error(init) == ("AccessDenied", 403)
    # An upload that sets the ACL needs only oss:PutObject (OSS's PutObject reference).
    bucket.put_object(KEY, SAVE, headers={"x-oss-object-acl": "private"})
    assert bucket.get_object(KEY).read() == SAVE


@pytest.mark.asyncio
async def test_oss2_each_sub_resource_needs_its_own_action(emulator: Emulator) -> None:
    creds = await asyncio.to_thread(_creds, emulator, ["oss:GetObject", "oss:PutObject"])
    await asyncio.to_thread(_oss2_denied, oss2_bucket(emulator, creds))


def _oss2_part_copy(bucket: Any, owner: Any) -> None:
    source = bytes(range(256)) * (PART // 256) + b"the tail"
    bucket.put_object("players/12/source.bin", source)
    owner.put_object("players/13/theirs.bin", b"another player's save")
    target = "players/12/copy.bin"
    upload_id = bucket.init_multipart_upload(target).upload_id
    # Another player's object as the source: oss:GetObject on it is denied, no part made.
    denied = lambda: bucket.upload_part_copy(  # noqa: E731
        BUCKET, "players/13/theirs.bin", None, target, upload_id, 1
    )
    assert _oss_error(denied) == ("AccessDenied", 403)
    assert bucket.list_parts(target, upload_id).parts == []
    first = bucket.upload_part_copy(
        BUCKET, "players/12/source.bin", (0, PART - 1), target, upload_id, 1
    )
    second = bucket.upload_part_copy(
        BUCKET, "players/12/source.bin", (PART, len(source) - 1), target, upload_id, 2
    )
    parts = [oss2.models.PartInfo(1, first.etag), oss2.models.PartInfo(2, second.etag)]
    bucket.complete_multipart_upload(target, upload_id, parts)
    assert bucket.get_object(target).read() == source
    assert bucket.get_object("players/12/source.bin").read() == source


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_oss2_upload_part_copy_reads_its_source(emulator: Emulator, v4: bool) -> None:
    creds = await asyncio.to_thread(
        _creds, emulator, ["oss:GetObject", "oss:PutObject", "oss:ListParts"]
    )
    bucket = oss2_bucket(emulator, creds, v4=v4)
    await asyncio.to_thread(_oss2_part_copy, bucket, oss2_bucket(emulator))


def _v2_attributes(client: oss_v2.Client) -> None:
    client.put_object(oss_v2.PutObjectRequest(bucket=BUCKET, key=KEY, body=SAVE))
    client.put_object_acl(oss_v2.PutObjectAclRequest(bucket=BUCKET, key=KEY, acl="private"))
    acl = client.get_object_acl(oss_v2.GetObjectAclRequest(bucket=BUCKET, key=KEY))
    assert acl.acl == "private"
    tags = oss_v2.Tagging(tag_set=oss_v2.TagSet(tags=[oss_v2.Tag(key="level", value="7")]))
    client.put_object_tagging(oss_v2.PutObjectTaggingRequest(bucket=BUCKET, key=KEY, tagging=tags))
    got = client.get_object_tagging(oss_v2.GetObjectTaggingRequest(bucket=BUCKET, key=KEY))
    assert [(t.key, t.value) for t in got.tag_set.tags] == [("level", "7")]
    client.delete_object_tagging(oss_v2.DeleteObjectTaggingRequest(bucket=BUCKET, key=KEY))
    got = client.get_object_tagging(oss_v2.GetObjectTaggingRequest(bucket=BUCKET, key=KEY))
    assert not (got.tag_set and got.tag_set.tags)
    link = "players/12/latest"
    client.put_symlink(oss_v2.PutSymlinkRequest(bucket=BUCKET, key=link, target=KEY))
    symlink = client.get_symlink(oss_v2.GetSymlinkRequest(bucket=BUCKET, key=link))
    assert unquote(symlink.target or "") == KEY
    body = client.get_object(oss_v2.GetObjectRequest(bucket=BUCKET, key=KEY)).body
    assert body is not None
    assert body.read() == SAVE


@pytest.mark.asyncio
async def test_oss_v2_acl_tags_symlink(emulator: Emulator) -> None:
    creds = await asyncio.to_thread(
        _creds, emulator, ["oss:GetObject", "oss:PutObject", *ATTRIBUTE_ACTIONS]
    )
    await asyncio.to_thread(_v2_attributes, v2_client(emulator, creds))


def _oss2_tags_carried(bucket: Any, untagged: Any) -> None:
    source = "players/12/tagged.dat"
    bucket.put_object(source, SAVE, headers={"x-oss-tagging": "level=7"})
    # A copy carries the source's tags over by default: it reads and writes tags.
    copy = lambda b, headers=None: b.copy_object(  # noqa: E731
        BUCKET, source, "players/12/copy.dat", headers=headers
    )
    assert _oss_error(lambda: copy(untagged)) == ("AccessDenied", 403)
    replace = {"x-oss-tagging-directive": "Replace", "x-oss-tagging": "mode=easy"}
    assert _oss_error(lambda: copy(untagged, replace)) == ("AccessDenied", 403)
    assert _oss_error(lambda: bucket.get_object("players/12/copy.dat")) == ("NoSuchKey", 404)
    copy(untagged, {"x-oss-tagging-directive": "Replace"})  # no tags read or written
    assert bucket.get_object_tagging("players/12/copy.dat").tag_set.tagging_rule == {}
    copy(bucket)
    assert bucket.get_object_tagging("players/12/copy.dat").tag_set.tagging_rule == {"level": "7"}
    copy(bucket, replace)
    assert bucket.get_object_tagging("players/12/copy.dat").tag_set.tagging_rule == {"mode": "easy"}
    assert bucket.get_object("players/12/copy.dat").read() == SAVE
    # Tags given when a multipart upload starts land on the object it completes.
    target = "players/12/multi.dat"
    upload_id = bucket.init_multipart_upload(target, headers={"x-oss-tagging": "a=1"}).upload_id
    part = bucket.upload_part(target, upload_id, 1, b"data")
    bucket.complete_multipart_upload(target, upload_id, [oss2.models.PartInfo(1, part.etag)])
    assert bucket.get_object_tagging(target).tag_set.tagging_rule == {"a": "1"}


@pytest.mark.asyncio
async def test_oss2_copies_and_uploads_carry_tags_under_the_tag_actions(
    emulator: Emulator,
) -> None:
    basic = ["oss:GetObject", "oss:PutObject"]
    tagged, untagged = await asyncio.gather(
        asyncio.to_thread(_creds, emulator, [*basic, *ATTRIBUTE_ACTIONS]),
        asyncio.to_thread(_creds, emulator, basic),
    )
    await asyncio.to_thread(
        _oss2_tags_carried, oss2_bucket(emulator, tagged), oss2_bucket(emulator, untagged)
    )
