"""I/O with Alibaba Cloud (or the emulator): one aiohttp session, signed requests, retries."""
