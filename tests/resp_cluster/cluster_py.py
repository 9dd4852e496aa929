"""redis-py against a haft cluster: the checks tests/resp_cluster.rs runs.

usage: cluster_py.py CHECK ARGS...

Each check prints one JSON object on success and exits non-zero (with the
failed assertion) otherwise.
"""

import json
import os
import random
import sys
import threading
import time

import redis

OPENING = 1000


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=20, socket_connect_timeout=2)


def open_accounts(ports, accounts):
    """MSET every account to OPENING through the first node that takes it."""
    keys = [f"account:{i}" for i in range(accounts)]
    deadline = time.time() + 30
    while True:
        try:
            client(random.choice(ports)).mset({k: OPENING for k in keys})
            return keys
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def transfers(ports, seconds, threads, accounts):
    """WATCH/MULTI/EXEC transfers between random accounts, from many threads,
    each through a random node, for SECONDS. Nodes die and come back meanwhile
    (the test kills them): a connection error or TRYAGAIN makes the worker move
    to another node. A transfer whose EXEC failed that way may or may not have
    happened; either way it moved money, never made or destroyed any, so the
    total the final check reads must be exact."""
    keys = open_accounts(ports, accounts)
    stop = time.time() + seconds
    counts = {"committed": 0, "watch_retries": 0, "connection_errors": 0, "tryagain": 0,
              "indeterminate": 0}
    lock = threading.Lock()
    failures = []

    def count(what):
        with lock:
            counts[what] += 1

    def worker(index):
        rng = random.Random(index)
        while time.time() < stop:
            connection = client(rng.choice(ports))
            try:
                with connection.pipeline() as pipe:
                    while time.time() < stop:
                        source, target = rng.sample(keys, 2)
                        amount = rng.randint(1, 20)
                        try:
                            pipe.watch(source, target)
                            have = int(pipe.get(source))
                            other = int(pipe.get(target))
                            pipe.multi()
                            pipe.set(source, have - amount)
                            pipe.set(target, other + amount)
                            pipe.execute()
                            count("committed")
                        except redis.WatchError:
                            count("watch_retries")
            except (redis.ConnectionError, redis.TimeoutError):
                count("connection_errors")
                time.sleep(0.05)
            except redis.ResponseError as error:
                # Retry-later answers; anything else is a failure.
                if "TRYAGAIN" in str(error):
                    count("tryagain")
                elif "outcome of the write is unknown" in str(error):
                    count("indeterminate")
                else:
                    failures.append(repr(error))
                    return
            finally:
                connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not failures, failures
    assert counts["committed"] > 0, counts
    return counts


def total(ports, accounts):
    """Reads every account (MGET, a validated snapshot) and checks the total."""
    keys = [f"account:{i}" for i in range(accounts)]
    deadline = time.time() + 60
    while True:
        try:
            balances = [int(v) for v in client(random.choice(ports)).mget(keys)]
            break
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    got = sum(balances)
    assert got == OPENING * accounts, (got, OPENING * accounts, balances)
    return {"total": got, "accounts": accounts}


def large(write_port, read_port, key, mebibytes):
    """A value of MEBIBYTES MiB written through one node comes back byte for
    byte through another."""
    value = os.urandom(mebibytes * 1024 * 1024)
    assert client(write_port).set(key, value) is True
    back = client(read_port).get(key)
    assert back == value, (len(back or b""), len(value))
    assert client(read_port).strlen(key) == len(value)
    return {"bytes": len(value)}


def ports_of(text):
    return [int(p) for p in text.split(",")]


CHECKS = {
    "transfers": lambda a: transfers(ports_of(a[0]), float(a[1]), int(a[2]), int(a[3])),
    "total": lambda a: total(ports_of(a[0]), int(a[1])),
    "large": lambda a: large(int(a[0]), int(a[1]), a[2], int(a[3])),
}

if __name__ == "__main__":
    print(json.dumps(CHECKS[sys.argv[1]](sys.argv[2:])))
