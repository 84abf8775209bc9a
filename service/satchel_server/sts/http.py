"""The one aiohttp client session per process, configured for talking to the cloud."""

from __future__ import annotations

import aiohttp

# Enough parallel connections for a burst of cold players within STS's 100 calls/s.
MAX_CONNECTIONS = 64


def new_session() -> aiohttp.ClientSession:
    """TLS verified (aiohttp's default), proxies from the environment ignored, no cookies.

    trust_env=False: an HTTPS_PROXY left in a container's environment must not
    silently route signed requests elsewhere.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ttl_dns_cache=300),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
    )
