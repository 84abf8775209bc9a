"""A ready-made scope for tests that need one."""

from __future__ import annotations

import dataclasses
from typing import Any

from satchel_server.config import ScopeSettings


def make_scope(**overrides: Any) -> ScopeSettings:
    base = ScopeSettings(
        name="saves",
        bucket="game-saves",
        region="cn-hangzhou",
        role_arn="acs:ram::1234567890123456:role/satchel-saves",
        endpoint="https://oss-cn-hangzhou.aliyuncs.com",
        default=True,
    )
    return dataclasses.replace(base, **overrides)
