"""Reading a PostObject form: the fields, then the `file` part, which must come last.

OSS ignores anything after the file part, so we stop reading there: a field placed after the
file can never override one that the policy check saw. Field names are case-insensitive
(`Policy`, `policy`); the original spelling is kept only for `x-oss-meta-*` names.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from satchel_server.emulator.errors import OssError

_MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class PostForm:
    fields: dict[str, str]  # lower-case name → value
    file_data: bytes
    file_name: str

    def field(self, name: str) -> str | None:
        return self.fields.get(name.lower())

    def key(self) -> str:
        key = self.field("key")
        if not key:
            raise OssError("InvalidArgument", "The form field 'key' is required.")
        return key.replace("${filename}", self.file_name)


async def _read_limited(part: BodyPartReader, cap: int, error: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await part.read_chunk(1 << 16)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            raise OssError(error)
        chunks.append(chunk)


async def read_post_form(request: web.Request, max_file_bytes: int) -> PostForm:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise OssError("MalformedPOSTRequest") from exc
    fields: dict[str, str] = {}
    while True:
        part = await reader.next()
        if part is None:
            raise OssError("InvalidArgument", "The form has no 'file' field.")
        if not isinstance(part, BodyPartReader) or not part.name:
            raise OssError("MalformedPOSTRequest")
        name = part.name.lower()
        if name == "file":
            data = await _read_limited(part, max_file_bytes, "EntityTooLarge")
            return PostForm(fields, data, part.filename or "")
        if name in fields:
            raise OssError("InvalidArgument", "A form field appears more than once.")
        raw = await _read_limited(part, _MAX_FIELD_BYTES, "MalformedPOSTRequest")
        fields[name] = raw.decode("utf-8", "replace")
