"""The emulator's settings and the state its apps share (directory, store, clock, faults)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from satchel_server.emulator.accounts import DEV_IDENTITY_ROLE_ARN, Directory
from satchel_server.emulator.faults import Faults, Service
from satchel_server.emulator.limits import NonceCache, RateLimiter
from satchel_server.emulator.store import ObjectStore

Clock = Callable[[], float]


@dataclass(frozen=True)
class EmulatorConfig:
    data_dir: Path
    accounts_file: Path | None = None
    # The accounts as the TOML file would describe them; wins over accounts_file.
    accounts: Mapping[str, object] | None = None
    host: str = "127.0.0.1"
    sts_port: int = 0
    oss_port: int = 0
    admin_port: int | None = None  # None: no admin endpoint (the default)
    max_body_bytes: int = 64 * 1024 * 1024
    policy_max_chars: int = 2048  # older accounts: 1024
    assume_role_rate_per_s: int = 100
    sts_max_skew_s: float = 900.0
    oss_max_skew_s: float = 900.0
    fault_seed: int = 0
    # The identity listener (metadata service and credentials URI); 0: any free port.
    identity_port: int = 0
    # The roles whose sessions the metadata service (the instance's role) and the
    # credentials URI hand out, and how long those last (ECS: 6 hours).
    instance_role_arn: str | None = DEV_IDENTITY_ROLE_ARN
    uri_role_arn: str | None = DEV_IDENTITY_ROLE_ARN
    identity_credentials_seconds: int = 21600
    # (certificate, key) PEM files: STS answers over HTTPS, as the cloud's does.
    sts_tls: tuple[Path, Path] | None = None


@dataclass
class Counters:
    """What tests count: every request the STS listener received (each attempt, including
    those answered by an injected fault or rejected), and the credentials it issued."""

    assume_role_calls: int = 0
    assume_role_issued: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass
class EmulatorState:
    config: EmulatorConfig
    directory: Directory
    store: ObjectStore
    clock: Clock = time.time
    faults: Faults = field(default_factory=Faults)
    counters: Counters = field(default_factory=Counters)
    nonces: NonceCache = field(default_factory=NonceCache)
    rate_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(100))

    def now(self, service: Service) -> float:
        """The service's idea of the time: the injected clock plus any injected offset."""
        return self.clock() + self.faults.clock_offset(service)


def new_request_id() -> str:
    # OSS and STS request ids are 24-32 upper-case hex characters.
    return secrets.token_hex(12).upper()
