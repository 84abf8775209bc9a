"""Local STS + OSS emulator (aiohttp.web): verifies signatures, evaluates RAM policies, stores
objects on disk and injects faults on demand. Start it with `service.emulator.runner`.
"""
