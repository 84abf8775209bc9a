"""Objects on disk: data files plus sidecar JSON metadata, and multipart upload state.

Layout under the data directory (one folder per bucket):
    objects/<sha256(key)>.data   the bytes
    objects/<sha256(key)>.json   metadata, including the key itself
    uploads/<upload id>/meta.json, part-<n>
A key is never used as a path (only its hash is), so `..`, `/` or NUL in a key cannot reach
outside the directory. Every write goes to a temporary file in the same folder and is then
`os.replace`d, so a reader never sees half an object. An in-memory index per bucket (rebuilt
from the sidecars on first use) keeps listing in key order without reading every file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from satchel_server.emulator.errors import OssError

_UPLOAD_ID = re.compile(r"^[0-9A-F]{32}$")
MAX_PART_NUMBER = 10000
MIN_PART_SIZE = 100 * 1024  # OSS: every part but the last must be at least 100 KB


DEFAULT_ACL = "default"  # the object follows its bucket's ACL


@dataclass(frozen=True)
class ObjectMeta:
    key: str
    size: int
    etag: str
    content_type: str
    last_modified: float
    user_meta: Mapping[str, str] = field(default_factory=dict)
    # Set with the object or through its own sub-resources, never by rewriting its bytes.
    acl: str = DEFAULT_ACL
    tags: Mapping[str, str] = field(default_factory=dict)
    symlink_target: str | None = None

    @property
    def object_type(self) -> str:
        """OSS's `x-oss-object-type`: Symlink, Multipart or Normal."""
        if self.symlink_target is not None:
            return "Symlink"
        return "Multipart" if "-" in self.etag else "Normal"


@dataclass(frozen=True)
class Extras:
    """What an upload sets besides its bytes: HTTP metadata, ACL and tags."""

    content_type: str
    user_meta: Mapping[str, str] = field(default_factory=dict)
    acl: str = DEFAULT_ACL
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListResult:
    objects: tuple[ObjectMeta, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_marker: str


@dataclass(frozen=True)
class PartInfo:
    number: int
    etag: str
    size: int
    last_modified: float


@dataclass(frozen=True)
class Upload:
    upload_id: str
    key: str
    initiated: float
    extras: Extras


def simple_etag(data: bytes) -> str:
    """OSS's ETag for a simple upload: the quoted, upper-case hex MD5 of the content."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest().upper() + '"'


def multipart_etag(part_etags: Sequence[str]) -> str:
    """MD5 over the concatenated binary part MD5s, then `-<number of parts>`."""
    digests = b"".join(bytes.fromhex(etag.strip('"')) for etag in part_etags)
    return (
        '"'
        + hashlib.md5(digests, usedforsecurity=False).hexdigest().upper()
        + f'-{len(part_etags)}"'
    )


def _key_name(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _mapping(raw: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _meta_from_json(raw: Mapping[str, object]) -> ObjectMeta:
    target = raw.get("symlink_target")
    return ObjectMeta(
        key=str(raw["key"]),
        size=int(str(raw["size"])),
        etag=str(raw["etag"]),
        content_type=str(raw["content_type"]),
        last_modified=float(str(raw["last_modified"])),
        user_meta=_mapping(raw.get("user_meta")),
        acl=str(raw.get("acl", DEFAULT_ACL)),
        tags=_mapping(raw.get("tags")),
        symlink_target=None if target is None else str(target),
    )


def _extras_from_json(raw: object) -> Extras:
    fields = raw if isinstance(raw, dict) else {}
    return Extras(
        content_type=str(fields.get("content_type", "")),
        user_meta=_mapping(fields.get("user_meta")),
        acl=str(fields.get("acl", DEFAULT_ACL)),
        tags=_mapping(fields.get("tags")),
    )


def encode_token(marker: str) -> str:
    """An opaque ListObjectsV2 continuation token."""
    return base64.urlsafe_b64encode(marker.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise OssError("InvalidArgument", "The continuation-token is not valid.") from exc


class ObjectStore:
    """Thread-safe: handlers may run store calls in worker threads."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.RLock()
        self._index: dict[str, dict[str, ObjectMeta]] = {}

    def _objects_dir(self, bucket: str) -> Path:
        path = self._root / bucket / "objects"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _uploads_dir(self, bucket: str) -> Path:
        path = self._root / bucket / "uploads"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _bucket_index(self, bucket: str) -> dict[str, ObjectMeta]:
        index = self._index.get(bucket)
        if index is None:
            index = {}
            for sidecar in self._objects_dir(bucket).glob("*.json"):
                meta = _meta_from_json(json.loads(sidecar.read_text("utf-8")))
                index[meta.key] = meta
            self._index[bucket] = index
        return index

    def _commit(self, bucket: str, meta: ObjectMeta, source: Path | bytes) -> None:
        base = self._objects_dir(bucket) / _key_name(meta.key)
        data_path = base.with_suffix(".data")
        if isinstance(source, Path):
            os.replace(source, data_path)
        else:
            _atomic_write(data_path, source)
        _atomic_write(base.with_suffix(".json"), json.dumps(asdict(meta)).encode())
        self._bucket_index(bucket)[meta.key] = meta

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        extras: Extras,
        now: float,
        forbid_overwrite: bool = False,
        symlink_target: str | None = None,
    ) -> ObjectMeta:
        meta = ObjectMeta(
            key,
            len(data),
            simple_etag(data),
            extras.content_type,
            now,
            dict(extras.user_meta),
            extras.acl,
            dict(extras.tags),
            symlink_target,
        )
        with self._lock:
            if forbid_overwrite and key in self._bucket_index(bucket):
                raise OssError("FileAlreadyExists")
            self._commit(bucket, meta, data)
        return meta

    def set_attributes(
        self,
        bucket: str,
        key: str,
        *,
        acl: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectMeta:
        """Change an object's ACL or tags: its sidecar is rewritten, its bytes never are."""
        with self._lock:
            meta = self.head(bucket, key)
            changed = replace(
                meta,
                acl=meta.acl if acl is None else acl,
                tags=dict(meta.tags if tags is None else tags),
            )
            base = self._objects_dir(bucket) / _key_name(key)
            _atomic_write(base.with_suffix(".json"), json.dumps(asdict(changed)).encode())
            self._bucket_index(bucket)[key] = changed
        return changed

    def head(self, bucket: str, key: str) -> ObjectMeta:
        with self._lock:
            meta = self._bucket_index(bucket).get(key)
        if meta is None:
            raise OssError("NoSuchKey")
        return meta

    def get(self, bucket: str, key: str) -> tuple[ObjectMeta, bytes]:
        with self._lock:
            meta = self.head(bucket, key)
            path = (self._objects_dir(bucket) / _key_name(key)).with_suffix(".data")
            return meta, path.read_bytes()

    def delete(self, bucket: str, key: str) -> bool:
        with self._lock:
            index = self._bucket_index(bucket)
            if key not in index:
                return False
            base = self._objects_dir(bucket) / _key_name(key)
            base.with_suffix(".json").unlink(missing_ok=True)
            base.with_suffix(".data").unlink(missing_ok=True)
            del index[key]
            return True

    def list_objects(
        self, bucket: str, *, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> ListResult:
        """Keys after `start_after` under `prefix`, rolled up at `delimiter`, in key order."""
        with self._lock:
            keys = sorted(k for k in self._bucket_index(bucket) if k.startswith(prefix))
            index = self._bucket_index(bucket)
        objects: list[ObjectMeta] = []
        prefixes: list[str] = []
        last = ""
        for key in keys:
            if key <= start_after:
                continue
            rolled = ""
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    rolled = key[: cut + len(delimiter)]
            # A key inside an already-returned common prefix is consumed by it.
            if rolled and (rolled == last or rolled <= start_after):
                continue
            if len(objects) + len(prefixes) >= max_keys:
                return ListResult(tuple(objects), tuple(prefixes), True, last)
            if rolled:
                prefixes.append(rolled)
                last = rolled
            else:
                objects.append(index[key])
                last = key
        return ListResult(tuple(objects), tuple(prefixes), False, "")

    # --- multipart -----------------------------------------------------------------------

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        # The id is checked against its own alphabet before it ever touches a path.
        if not _UPLOAD_ID.match(upload_id):
            raise OssError("NoSuchUpload")
        path = self._uploads_dir(bucket) / upload_id
        if not path.is_dir():
            raise OssError("NoSuchUpload")
        return path

    def initiate(self, bucket: str, key: str, *, extras: Extras, now: float) -> Upload:
        upload = Upload(secrets.token_hex(16).upper(), key, now, extras)
        path = self._uploads_dir(bucket) / upload.upload_id
        path.mkdir()
        _atomic_write(path / "meta.json", json.dumps(asdict(upload)).encode())
        return upload

    def upload(self, bucket: str, upload_id: str) -> Upload:
        raw = json.loads((self._upload_dir(bucket, upload_id) / "meta.json").read_text("utf-8"))
        return Upload(
            str(raw["upload_id"]),
            str(raw["key"]),
            float(raw["initiated"]),
            _extras_from_json(raw.get("extras")),
        )

    def upload_part(
        self, bucket: str, upload_id: str, number: int, data: bytes, now: float
    ) -> PartInfo:
        if not 1 <= number <= MAX_PART_NUMBER:
            raise OssError("InvalidArgument", "Part number must be an integer between 1 and 10000.")
        path = self._upload_dir(bucket, upload_id)
        part = PartInfo(number, simple_etag(data), len(data), now)
        _atomic_write(path / f"part-{number}", data)
        _atomic_write(path / f"part-{number}.json", json.dumps(asdict(part)).encode())
        return part

    def list_parts(self, bucket: str, upload_id: str) -> list[PartInfo]:
        path = self._upload_dir(bucket, upload_id)
        parts = [PartInfo(**json.loads(p.read_text("utf-8"))) for p in path.glob("part-*.json")]
        return sorted(parts, key=lambda part: part.number)

    def list_uploads(self, bucket: str) -> list[Upload]:
        ids = [p.name for p in self._uploads_dir(bucket).iterdir() if _UPLOAD_ID.match(p.name)]
        return sorted((self.upload(bucket, i) for i in ids), key=lambda u: (u.key, u.initiated))

    def complete(
        self, bucket: str, upload_id: str, parts: Sequence[tuple[int, str]], now: float
    ) -> ObjectMeta:
        """Assemble the listed parts (number, ETag) in order into the object."""
        path = self._upload_dir(bucket, upload_id)
        upload = self.upload(bucket, upload_id)
        stored = {part.number: part for part in self.list_parts(bucket, upload_id)}
        if not parts:
            raise OssError("InvalidPart")
        numbers = [number for number, _ in parts]
        if numbers != sorted(set(numbers)):
            raise OssError("InvalidPartOrder")
        for position, (number, etag) in enumerate(parts):
            part = stored.get(number)
            if part is None or part.etag.strip('"').upper() != etag.strip('"').upper():
                raise OssError("InvalidPart")
            if position < len(parts) - 1 and part.size < MIN_PART_SIZE:
                raise OssError("EntityTooSmall")
        fd, tmp = tempfile.mkstemp(dir=self._objects_dir(bucket), prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            for number, _ in parts:
                with open(path / f"part-{number}", "rb") as src:
                    shutil.copyfileobj(src, out)
        size = os.path.getsize(tmp)
        etag = multipart_etag([stored[number].etag for number, _ in parts])
        extras = upload.extras
        meta = ObjectMeta(
            upload.key,
            size,
            etag,
            extras.content_type,
            now,
            dict(extras.user_meta),
            extras.acl,
            dict(extras.tags),
        )
        with self._lock:
            self._commit(bucket, meta, Path(tmp))
        shutil.rmtree(path, ignore_errors=True)
        return meta

    def abort(self, bucket: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(bucket, upload_id))
