"""A player's device: fetch a token from the game server, upload a save with `oss2`.

The token JSON is the STS app server format the mobile SDKs read, so the same endpoint serves
Android's `OSSAuthCredentialsProvider`, iOS's `OSSAuthCredentialProvider`, and this script.

    python examples/device_upload_oss2.py --game-server http://127.0.0.1:8080 \
        --session session-alice --save ./slot1.dat

Prints a JSON summary: what was uploaded, what the folder lists, and that another player's
folder is out of reach.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path
from typing import Any

import oss2


def fetch_token(game_server: str, session: str) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - the URL is the game server's, by design
        f"{game_server}/oss/token", headers={"Authorization": f"Bearer {session}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: dict[str, str] = json.load(response)
    if body["StatusCode"] != "200":
        raise RuntimeError(f"{body['ErrorCode']}: {body['ErrorMessage']}")
    return body


def upload(token: dict[str, str], data: bytes) -> dict[str, Any]:
    # V4 signatures need the region; oss2 would otherwise sign an invalid scope silently.
    auth = oss2.StsAuth(
        token["AccessKeyId"],
        token["AccessKeySecret"],
        token["SecurityToken"],
        auth_version=oss2.AUTH_VERSION_4,
    )
    bucket = oss2.Bucket(auth, token["Endpoint"], token["Bucket"], region=token["Region"])
    folder = token["Prefix"]  # players/<id>/: the only folder these credentials reach
    key = f"{folder}saves/slot1.dat"
    bucket.put_object(key, data)
    round_trip = bucket.get_object(key).read() == data
    listed = [entry.key for entry in oss2.ObjectIterator(bucket, prefix=folder)]
    try:
        bucket.put_object("players/someone-else/saves/slot1.dat", data)
        elsewhere = "ok"
    except oss2.exceptions.OssError as error:
        elsewhere = error.code
    return {
        "uploaded": key,
        "bytes": len(data),
        "round_trip": round_trip,
        "listed": listed,
        "other_player_folder": elsewhere,
        "expires": token["Expiration"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game-server", default="http://127.0.0.1:8080")
    parser.add_argument("--session", default="session-alice", help="the player's login session")
    parser.add_argument("--save", type=Path, help="file to upload (default: a demo save)")
    args = parser.parse_args()
    data = args.save.read_bytes() if args.save else b"level=3;coins=120"
    token = fetch_token(args.game_server, args.session)
    print(json.dumps(upload(token, data), indent=2))


if __name__ == "__main__":
    main()
