"""Satchel: a gRPC credential broker for per-player access to Alibaba Cloud OSS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("satchel-server")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
