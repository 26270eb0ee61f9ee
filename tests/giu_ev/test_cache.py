"""The production cache backend against a real Redis."""

import threading

from giu_ev.cache import RedisCache
from tests.giu_ev.servers import TEST_REDIS_URL


def production_cache() -> RedisCache:
    return RedisCache(TEST_REDIS_URL, {"KEY_PREFIX": "giu-ev-test-cache"})


def test_it_counts_as_the_rate_limits_do():
    cache = production_cache()
    cache.delete("hits")

    assert cache.add("hits", 1, 60)
    assert not cache.add("hits", 1, 60)
    assert cache.incr("hits") == 2
    assert cache.get("hits") == 2
    cache.delete("hits")


def test_threads_share_one_client_and_a_few_connections():
    cache = production_cache()
    cache.set("shared", "value", 60)
    clients = set()

    def work():
        for _ in range(200):
            assert cache.get("shared") == "value"
        clients.add(id(cache._cache.get_client()))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(clients) == 1
    pool = cache._cache._get_connection_pool(write=False)
    assert len(pool._available_connections) + len(pool._in_use_connections) <= 8
    cache.delete("shared")


def test_incr_of_a_missing_key_is_an_error_and_creates_nothing():
    cache = production_cache()
    cache.delete("gone")

    try:
        cache.incr("gone")
    except ValueError:
        pass
    else:
        raise AssertionError("incr of a missing key must raise ValueError")
    assert cache.get("gone") is None


def test_incr_keeps_the_expiry_of_the_counter():
    cache = production_cache()
    cache.add("window", 1, 30)

    assert cache.incr("window", 5) == 6
    client = cache._cache.get_client()
    assert 0 < client.ttl(cache.make_key("window")) <= 30
    cache.delete("window")
