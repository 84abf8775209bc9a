"""PresignObjects answers each item exactly as PresignObject answers that item alone.

One server (a fixed clock, a scope signing with a key of its own: no STS) serves both RPCs
from a thread of its own; hypothesis mixes good and bad items, and every item's result in
the batch must equal the single call's answer, or its refusal (status, message, field named
from the request's root).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api.servicer import TokenService
from satchel_server.config import AccessKey
from satchel_server.credentials.budget import TokenBucket
from satchel_server.presigning.presigner import Presigner
from satchel_server.presigning.signing_credentials import ScopeRefresher, ScopeSigningCredentials

SCOPE = make_scope(sign_with_access_key=True, permissions=("read", "write", "list"))


def _serve(address: list[str], ready: threading.Event, stop: threading.Event) -> None:
    async def main() -> None:
        clock = FakeClock()
        signer = ScopeRefresher(
            SCOPE, ScriptedSts(clock), TokenBucket(1), AccessKey("LTAI-k", "secret")
        )
        presigner = Presigner(
            {SCOPE.name: SCOPE}, ScopeSigningCredentials({SCOPE.name: signer}), clock
        )
        server = grpc.aio.server()
        service = TokenService({SCOPE.name: SCOPE}, presigner=presigner)
        pb_grpc.add_TokenServiceServicer_to_server(service, server)
        address.append(f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}")
        await server.start()
        ready.set()
        await asyncio.to_thread(stop.wait)
        await server.stop(None)

    asyncio.run(main())


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.TokenServiceStub]:
    address: list[str] = []
    ready = threading.Event()
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(address, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        with grpc.insecure_channel(address[0]) as channel:
            yield pb_grpc.TokenServiceStub(channel)
    finally:
        stop.set()
        thread.join(10)


def _field(status: Any) -> str | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return str(bad.field_violations[0].field)
    return None


KEYS = st.one_of(
    st.sampled_from(["save.dat", "a/b/c.png", "存档.sav", "", "../x", "a//b", "/abs", "${x}"]),
    st.text(min_size=0, max_size=12),
)
ITEMS = st.builds(
    pb.PresignItem,
    content_length=st.sampled_from([None, 0, 5, -1]),
    key=KEYS,
    method=st.sampled_from([*pb.HttpMethod.values(), 9]),
    expires_in=st.sampled_from([None, Duration(seconds=0), Duration(seconds=60)]),
    content_type=st.sampled_from(["", "image/png", "not a type"]),
    max_size=st.sampled_from([0, -1, 16]),
    forbid_overwrite=st.booleans(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEMS, min_size=1, max_size=8))
def test_each_item_is_answered_as_presign_object_would_answer_it(
    stub: pb_grpc.TokenServiceStub, items: list[pb.PresignItem]
) -> None:
    batch = stub.PresignObjects(pb.PresignObjectsRequest(player_id="p1", items=items), timeout=10)
    assert len(batch.results) == len(items)
    for index, (item, result) in enumerate(zip(items, batch.results, strict=True)):
        single = pb.PresignObjectRequest(player_id="p1")
        for name in ("key", "method", "content_type", "max_size", "forbid_overwrite"):
            setattr(single, name, getattr(item, name))
        if item.HasField("expires_in"):
            single.expires_in.CopyFrom(item.expires_in)
        if item.HasField("content_length"):
            single.content_length = item.content_length
        try:
            alone = stub.PresignObject(single, timeout=10)
        except grpc.RpcError as error:
            assert result.WhichOneof("outcome") == "error"
            refused: status_pb2.Status = rpc_status.from_call(error)  # type: ignore[arg-type]
            assert result.error.code == refused.code
            assert result.error.message == f"items[{index}].{refused.message}"
            assert _field(result.error) == f"items[{index}].{_field(refused)}"
        else:
            assert result.WhichOneof("outcome") == "presigned"
            assert result.presigned == alone
