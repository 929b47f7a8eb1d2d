"""The private redis-server tests start (see :mod:`bench.redis_process`)."""

from bench.redis_process import RedisProcess, free_port

__all__ = ["RedisProcess", "free_port"]
