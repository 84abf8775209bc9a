"""STS over aiohttp: AssumeRole signed by the signing core, retried, errors mapped in one table."""
