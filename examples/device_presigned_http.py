"""A player's device with no SDK at all: presigned PUT, POST form and GET over plain HTTP.

The game server asks Satchel to presign one operation on one object; the device sends it
exactly as given: the URL byte for byte (`yarl.URL(url, encoded=True)`: re-encoding would
break the signature), the headers unchanged (a PUT's Content-Length is signed: a body of
another size is refused), the POST form's fields before the file.

    python examples/device_presigned_http.py --game-server http://127.0.0.1:8080 \
        --session session-alice

Prints a JSON summary of the HTTP statuses seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aiohttp
from yarl import URL


class GameServer:
    def __init__(self, http: aiohttp.ClientSession, base: str, session: str) -> None:
        self._http, self._base, self._session = http, base, session

    async def presign(
        self, key: str, method: str, content_type: str = "", content_length: int | None = None
    ) -> dict[str, Any]:
        asked = {"key": key, "method": method, "content_type": content_type}
        if content_length is not None:
            asked["content_length"] = content_length
        async with self._http.post(
            f"{self._base}/oss/presign",
            json=asked,
            headers={"Authorization": f"Bearer {self._session}"},
        ) as response:
            response.raise_for_status()
            body: dict[str, Any] = await response.json()
            return body


async def send(http: aiohttp.ClientSession, presigned: dict[str, Any], data: bytes = b"") -> int:
    """Send a presigned GET or PUT as given; return the HTTP status.

    aiohttp sets Content-Length from the body itself, so the signed one is left to it: the
    same value when the body has the size the URL was signed for.
    """
    headers = {k: v for k, v in presigned["headers"].items() if k.lower() != "content-length"}
    async with http.request(
        presigned["method"],
        URL(presigned["url"], encoded=True),
        data=data if presigned["method"] == "PUT" else None,
        headers=headers,
    ) as response:
        await response.read()
        return response.status


async def post_form(http: aiohttp.ClientSession, presigned: dict[str, Any], data: bytes) -> int:
    """Upload through a presigned POST form; `file` must be the last field."""
    form = aiohttp.FormData()
    for name, value in presigned["form_fields"].items():
        form.add_field(name, value)
    form.add_field("file", data, filename="save.dat", content_type="application/octet-stream")
    async with http.post(URL(presigned["url"], encoded=True), data=form) as response:
        await response.read()
        return response.status


async def download(http: aiohttp.ClientSession, game: GameServer, key: str) -> bytes:
    presigned = await game.presign(key, "GET")
    async with http.get(URL(presigned["url"], encoded=True)) as response:
        response.raise_for_status()
        return await response.read()


async def run(base: str, session: str) -> dict[str, Any]:
    save = b"level=4;coins=250"
    async with aiohttp.ClientSession() as http:
        game = GameServer(http, base, session)
        put = await game.presign("saves/slot2.dat", "PUT", "application/octet-stream", len(save))
        # The URL signed the save's size: a bigger body is refused (403), the save lands.
        other_size = await send(http, put, save + b";cheat=1")
        put_status = await send(http, put, save)

        form = await game.presign("saves/slot3.dat", "POST")
        post_status = await post_form(http, form, save)
        # The form's policy caps the size (content-length-range): one byte over is refused.
        too_big = await post_form(http, form, b"x" * (64 * 1024 + 1))

        return {
            "put": {"key": put["key"], "status": put_status},
            "put_of_another_size": {"status": other_size},
            "post": {"key": form["key"], "status": post_status},
            "post_over_the_cap": {"status": too_big},
            "downloaded_equal": [
                await download(http, game, "saves/slot2.dat") == save,
                await download(http, game, "saves/slot3.dat") == save,
            ],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game-server", default="http://127.0.0.1:8080")
    parser.add_argument("--session", default="session-alice", help="the player's login session")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.game_server, args.session)), indent=2))


if __name__ == "__main__":
    main()
