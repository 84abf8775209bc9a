"""OssFolderLister against the emulator: ListObjectsV2 pages, V4 and V1, and failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator
from satchel_server.emulator.store import Extras
from satchel_server.errors import UsageUnavailable
from satchel_server.presigning.quota import FolderQuery
from satchel_server.signing import OssEndpoint, SigningCredentials
from satchel_server.storage.listing import OssFolderLister

__all__ = ["emulator"]
pytestmark = pytest.mark.asyncio
EXTRAS = Extras("application/octet-stream")
OWNER = SigningCredentials(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
SIZES = {"players/p1/a": 3, "players/p1/dir/b c+d": 5, "players/p1/é": 0, "players/p1/z": 11}


@pytest_asyncio.fixture
async def filled(emulator: Emulator) -> Emulator:
    store = emulator.state.store
    for key, size in {**SIZES, "players/p10/other": 99, "players/p2/x": 7}.items():
        store.put(acc.DEV_BUCKET, key, b"x" * size, extras=EXTRAS, now=emulator.state.now("oss"))
    return emulator


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def query(emu: Emulator, **overrides: object) -> FolderQuery:
    fields: dict[str, object] = {
        "bucket": acc.DEV_BUCKET,
        "region": acc.DEV_REGION,
        "endpoint": OssEndpoint(
            emu.oss_url.removeprefix("http://"), scheme="http", path_style=True
        ),
        "signature": "v4",
        "prefix": "players/p1/",
        "credentials": OWNER,
        "max_objects": 100,
    }
    fields.update(overrides)
    return FolderQuery(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("signature", ["v4", "v1"])
async def test_a_folder_is_listed_over_pages(
    filled: Emulator, session: aiohttp.ClientSession, signature: str
) -> None:
    lister = OssFolderLister(session, page_size=2)
    listing = await lister.list_folder(query(filled, signature=signature))
    assert dict(listing.sizes) == SIZES  # players/p10/ is another folder
    assert listing.complete
    assert listing.total == 19


async def test_a_folder_bigger_than_the_bound_is_incomplete(
    filled: Emulator, session: aiohttp.ClientSession
) -> None:
    listing = await OssFolderLister(session, page_size=2).list_folder(query(filled, max_objects=3))
    assert not listing.complete


async def test_a_refused_lookup_is_unavailable_naming_the_code(
    filled: Emulator, session: aiohttp.ClientSession
) -> None:
    wrong = SigningCredentials(acc.DEV_ACCESS_KEY_ID, "not-the-secret")
    with pytest.raises(UsageUnavailable, match="HTTP 403 SignatureDoesNotMatch") as refused:
        await OssFolderLister(session).list_folder(query(filled, credentials=wrong))
    assert refused.value.retry_after_seconds > 0
    assert "not-the-secret" not in str(refused.value)


async def test_an_unreachable_oss_is_unavailable(session: aiohttp.ClientSession) -> None:
    endpoint = OssEndpoint("127.0.0.1:9", scheme="http", path_style=True)
    fields = {"endpoint": endpoint, "bucket": acc.DEV_BUCKET, "region": acc.DEV_REGION}
    probe = FolderQuery(
        signature="v4", prefix="players/p1/", credentials=OWNER, max_objects=10, **fields
    )
    with pytest.raises(UsageUnavailable, match="cannot reach OSS"):
        await OssFolderLister(session).list_folder(probe)
