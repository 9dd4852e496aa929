"""redis-py against haft's RESP front end: the checks tests/resp.rs runs.

usage: redis_py.py PORT CHECK [ARGS...]

Each check prints one JSON object on success and exits non-zero (with the
failed assertion) otherwise.
"""

import json
import os
import random
import sys
import threading

import redis


def client(port, **options):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=30, **options)


def in_threads(count, work):
    """Runs work(0) … work(count - 1) on threads at once; fails if any raised."""
    failures = []

    def run(index):
        try:
            work(index)
        except Exception as error:  # reported below, not lost in the thread
            failures.append(repr(error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def transfer(port, threads, transfers, accounts, protocol):
    """Concurrent WATCH/MULTI/EXEC transfers; the total must be conserved."""
    keys = [f"account:{i}" for i in range(accounts)]
    opening = 1000
    client(port, protocol=protocol).mset({k: opening for k in keys})
    retries = [0] * threads

    def worker(index):
        connection = client(port, protocol=protocol)
        rng = random.Random(index)
        for _ in range(transfers):
            source, target = rng.sample(keys, 2)
            amount = rng.randint(1, 20)
            with connection.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(source, target)
                        have = int(pipe.get(source))
                        other = int(pipe.get(target))
                        pipe.multi()
                        pipe.set(source, have - amount)
                        pipe.set(target, other + amount)
                        pipe.execute()
                        break
                    except redis.WatchError:
                        retries[index] += 1

    in_threads(threads, worker)
    balances = [int(v) for v in client(port).mget(keys)]
    total = sum(balances)
    assert total == opening * accounts, (total, opening * accounts, balances)
    return {"total": total, "watch_retries": sum(retries), "transfers": threads * transfers}


def incr(port, threads, increments):
    """INCR from many clients at once loses nothing."""
    key = "counter"
    client(port).delete(key)

    def worker(_):
        connection = client(port)
        for _ in range(increments):
            connection.incr(key)

    in_threads(threads, worker)
    value = int(client(port).get(key))
    assert value == threads * increments, (value, threads * increments)
    return {"counter": value}


def large(port, mebibytes, protocol):
    """A value of MEBIBYTES MiB goes in and comes back byte for byte."""
    value = os.urandom(mebibytes * 1024 * 1024)
    connection = client(port, protocol=protocol)
    assert connection.set("large", value) is True
    back = connection.get("large")
    assert back == value, (len(back or b""), len(value))
    assert connection.strlen("large") == len(value)
    assert connection.delete("large") == 1
    return {"bytes": len(value)}


def resp3(port):
    """HELLO 3 and RESP3's own reply types, as redis-py sees them."""
    connection = client(port, protocol=3, decode_responses=True)
    hello = connection.execute_command("HELLO", "3")
    assert hello["proto"] == 3 and hello["server"] == "haft", hello
    assert connection.set("r3", "v") is True
    assert connection.get("r3") == "v"
    assert connection.get("r3-missing") is None
    assert connection.incr("r3-n") == 1
    assert connection.mget("r3", "r3-missing") == ["v", None]
    info = connection.info()
    assert "redis_version" in info and "epoch" in info, info
    commands = connection.command()
    assert commands["get"]["arity"] == 2 and commands["mset"]["step_count"] == 2, commands
    assert connection.command_count() == len(commands)
    with connection.pipeline() as pipe:
        pipe.set("r3-a", 1).incr("r3-a").get("r3-a")
        assert pipe.execute() == [True, 2, "2"]
    connection.client_setname("haft-test")
    assert connection.client_getname() == "haft-test"
    assert isinstance(connection.client_id(), int)
    return {"hello": hello}


def auth(port, password):
    """requirepass: refused without the password, served with it (RESP2 and RESP3)."""
    try:
        client(port).get("k")
        raise AssertionError("GET without AUTH succeeded")
    except redis.AuthenticationError:
        pass
    for protocol in (2, 3):
        try:
            client(port, password="wrong", protocol=protocol).ping()
            raise AssertionError(f"a wrong password was accepted (RESP{protocol})")
        except redis.AuthenticationError:
            pass
        authed = client(port, password=password, protocol=protocol)
        assert authed.set("k", f"v{protocol}") is True
        assert authed.get("k") == f"v{protocol}".encode()
    return {"authenticated": True}


CHECKS = {
    "transfer": lambda port, a: transfer(port, int(a[0]), int(a[1]), int(a[2]), int(a[3])),
    "incr": lambda port, a: incr(port, int(a[0]), int(a[1])),
    "large": lambda port, a: large(port, int(a[0]), int(a[1])),
    "resp3": lambda port, a: resp3(port),
    "auth": lambda port, a: auth(port, a[0]),
}

if __name__ == "__main__":
    port, check = int(sys.argv[1]), sys.argv[2]
    print(json.dumps(CHECKS[check](port, sys.argv[3:])))
