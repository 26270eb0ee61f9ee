"""The production cache backend: Django's Redis cache, counted by
django-prometheus, with one redis-py client object per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` for every cache call, and
redis-py 8 fills a table of about 170 response callbacks in each one. An API
request makes four cache calls (two rate-limit counters), which cost about
0.4 ms of CPU per request here in client construction alone. ``redis.Redis`` is
safe to share between threads (each command takes a connection from the pool),
so one per pool serves the whole process.
"""

from typing import Any

from django.core.cache.backends.redis import RedisCacheClient
from django_prometheus.cache.backends.redis import NativeRedisCache


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients.setdefault(index, self._client(connection_pool=pool))
        return client


class RedisCache(NativeRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
