"""The on-disk object store: ETags, atomic layout, key hashing, listing, multipart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel_server.emulator.errors import OssError
from satchel_server.emulator.store import (
    MIN_PART_SIZE,
    Extras,
    ObjectStore,
    decode_token,
    encode_token,
    multipart_etag,
    simple_etag,
)

B = "bucket"


def _put(store: ObjectStore, key: str, data: bytes = b"x") -> None:
    store.put(B, key, data, extras=Extras("text/plain", {}), now=1.0)


def test_etag_is_quoted_uppercase_md5() -> None:
    assert simple_etag(b"hello") == '"5D41402ABC4B2A76B9719D911017C592"'


def test_multipart_etag() -> None:
    a, b = simple_etag(b"a"), simple_etag(b"b")
    raw = hashlib.md5(hashlib.md5(b"a").digest() + hashlib.md5(b"b").digest()).hexdigest()
    assert multipart_etag([a, b]) == f'"{raw.upper()}-2"'


def test_put_get_head_delete(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    meta = store.put(B, "a/b.txt", b"data", extras=Extras("text/plain", {"k": "v"}), now=5.0)
    assert meta.size == 4
    got, data = store.get(B, "a/b.txt")
    assert data == b"data"
    assert got == meta
    assert store.head(B, "a/b.txt").user_meta == {"k": "v"}
    # A fresh store rebuilds its index from the sidecars.
    assert ObjectStore(tmp_path).head(B, "a/b.txt") == meta
    assert store.delete(B, "a/b.txt")
    assert not store.delete(B, "a/b.txt")
    with pytest.raises(OssError) as info:
        store.get(B, "a/b.txt")
    assert info.value.code == "NoSuchKey"


def test_forbid_overwrite(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    _put(store, "k")
    with pytest.raises(OssError) as info:
        store.put(B, "k", b"y", extras=Extras("", {}), now=1.0, forbid_overwrite=True)
    assert info.value.code == "FileAlreadyExists"


@pytest.mark.parametrize("key", ["../../escape", "/etc/passwd", "a/../../b", "..", "\x00x"])
def test_keys_never_become_paths(tmp_path: Path, key: str) -> None:
    root = tmp_path / "data"
    store = ObjectStore(root)
    _put(store, key, b"secret")
    assert store.get(B, key)[1] == b"secret"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written
    assert all(root in p.parents for p in written)
    assert all(len(p.stem) == 64 for p in written)


def test_list_with_delimiter_and_paging(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    for key in ["a/1", "a/2", "b", "c/x/1", "c/y", "d"]:
        _put(store, key)
    page = store.list_objects(B, prefix="", delimiter="/", start_after="", max_keys=2)
    assert page.common_prefixes == ("a/",)
    assert [o.key for o in page.objects] == ["b"]
    assert page.is_truncated
    assert page.next_marker == "b"
    page = store.list_objects(B, prefix="", delimiter="/", start_after="b", max_keys=10)
    assert page.common_prefixes == ("c/",)
    assert [o.key for o in page.objects] == ["d"]
    assert not page.is_truncated
    page = store.list_objects(B, prefix="c/", delimiter="/", start_after="", max_keys=10)
    assert page.common_prefixes == ("c/x/",)
    assert [o.key for o in page.objects] == ["c/y"]
    # A marker equal to a common prefix skips everything under it.
    page = store.list_objects(B, prefix="", delimiter="/", start_after="a/", max_keys=1)
    assert [o.key for o in page.objects] == ["b"]


@settings(max_examples=40, deadline=None)
@given(
    keys=st.sets(st.text(alphabet="ab/", min_size=1, max_size=5), max_size=12),
    page_size=st.integers(min_value=1, max_value=4),
    delimiter=st.sampled_from(["", "/"]),
)
def test_paging_visits_everything_once(
    tmp_path_factory: pytest.TempPathFactory, keys: set[str], page_size: int, delimiter: str
) -> None:
    store = ObjectStore(tmp_path_factory.mktemp("s"))
    for key in keys:
        _put(store, key)
    seen: list[str] = []
    marker = ""
    while True:
        page = store.list_objects(
            B, prefix="", delimiter=delimiter, start_after=marker, max_keys=page_size
        )
        seen += [o.key for o in page.objects] + list(page.common_prefixes)
        if not page.is_truncated:
            break
        marker = page.next_marker
    expected = set()
    for key in keys:
        cut = key.find(delimiter) if delimiter else -1
        expected.add(key[: cut + 1] if cut >= 0 else key)
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(expected)


def test_continuation_token_roundtrip() -> None:
    assert decode_token(encode_token("players/12/ü")) == "players/12/ü"
    with pytest.raises(OssError):
        decode_token("!!!")


def test_multipart(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    upload = store.initiate(B, "big", extras=Extras("bin", {"m": "1"}), now=1.0)
    part1 = b"a" * MIN_PART_SIZE
    p1 = store.upload_part(B, upload.upload_id, 1, part1, 2.0)
    p2 = store.upload_part(B, upload.upload_id, 2, b"tail", 2.0)
    assert [p.number for p in store.list_parts(B, upload.upload_id)] == [1, 2]
    assert [u.upload_id for u in store.list_uploads(B)] == [upload.upload_id]
    meta = store.complete(B, upload.upload_id, [(1, p1.etag), (2, p2.etag)], 3.0)
    assert meta.etag == multipart_etag([p1.etag, p2.etag])
    assert meta.etag.endswith('-2"')
    assert store.get(B, "big")[1] == part1 + b"tail"
    assert store.head(B, "big").user_meta == {"m": "1"}
    with pytest.raises(OssError) as info:
        store.list_parts(B, upload.upload_id)
    assert info.value.code == "NoSuchUpload"


def test_multipart_errors(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    upload = store.initiate(B, "k", extras=Extras("", {}), now=1.0)
    p1 = store.upload_part(B, upload.upload_id, 1, b"small", 1.0)
    p2 = store.upload_part(B, upload.upload_id, 2, b"small", 1.0)

    def code(parts: list[tuple[int, str]]) -> str:
        with pytest.raises(OssError) as info:
            store.complete(B, upload.upload_id, parts, 1.0)
        return info.value.code

    assert code([(2, p2.etag), (1, p1.etag)]) == "InvalidPartOrder"
    assert code([(1, '"00"')]) == "InvalidPart"
    assert code([(3, p1.etag)]) == "InvalidPart"
    assert code([(1, p1.etag), (2, p2.etag)]) == "EntityTooSmall"
    with pytest.raises(OssError):
        store.upload_part(B, upload.upload_id, 0, b"", 1.0)
    with pytest.raises(OssError) as info:
        store.abort(B, "../" + upload.upload_id)
    assert info.value.code == "NoSuchUpload"
    store.abort(B, upload.upload_id)
    with pytest.raises(OssError):
        store.abort(B, upload.upload_id)
