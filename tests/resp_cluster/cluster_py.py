"""redis-py against a haft cluster: the checks tests/resp_cluster.rs runs.

usage: cluster_py.py CHECK ARGS...

Each check prints one JSON object on success and exits non-zero (with the
failed assertion) otherwise.
"""

import json
import random
import sys
import threading
import time

import redis

OPENING = 1000


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=20, socket_connect_timeout=2)


def run_threads(threads, worker):
    """Runs worker(0) … worker(THREADS - 1) at once; returns when all are done."""
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()


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
    each through a random node, for SECONDS, while the test kills and restarts
    nodes; then every answer is checked against what the cluster holds.

    Each transfer also writes a marker key of its own (`transfer:W:N`, holding
    "source target amount") in the same MULTI, so that whether it happened can
    be read afterwards. The answers a worker gets:

    - OK from EXEC: committed; its marker must be there;
    - a null EXEC (WatchError "Watched variable changed") or TRYAGAIN: nothing
      was written; its marker must not be there;
    - anything else (a dropped connection or a timeout, which redis-py also
      reports as a WatchError while watching; "the outcome of the write is
      unknown"): indeterminate; the marker says whether it happened, and it is
      counted accordingly, never as a failure.

    At the end every account must hold OPENING plus the effect of exactly the
    transfers whose markers exist, and the total must be OPENING × accounts:
    a lost or doubled transfer, or a read that was not validated (a lost
    update), shows up as a wrong balance."""
    keys = open_accounts(ports, accounts)
    stop = time.time() + seconds
    counts = {"committed": 0, "watch_retries": 0, "tryagain": 0, "indeterminate": 0}
    lock = threading.Lock()
    failures = []
    # marker key -> (answer, source, target, amount)
    attempts = {}

    def record(marker, answer, source, target, amount):
        with lock:
            counts[answer] += 1
            attempts[marker] = (answer, source, target, amount)

    def worker(index):
        rng = random.Random(index)
        serial = 0
        connection = None
        while time.time() < stop:
            if connection is None:
                connection = client(rng.choice(ports))
            source, target = rng.sample(keys, 2)
            amount = rng.randint(1, 20)
            serial += 1
            marker = f"transfer:{index}:{serial}"
            try:
                with connection.pipeline() as pipe:
                    pipe.watch(source, target)
                    have = int(pipe.get(source))
                    other = int(pipe.get(target))
                    pipe.multi()
                    pipe.set(source, have - amount)
                    pipe.set(target, other + amount)
                    pipe.set(marker, f"{source} {target} {amount}")
                    pipe.execute()
                record(marker, "committed", source, target, amount)
            except redis.WatchError as error:
                if "Watched variable changed" in str(error):
                    # EXEC answered null: nothing was written.
                    record(marker, "watch_retries", source, target, amount)
                else:
                    # redis-py's word for a connection lost while watching,
                    # EXEC included: indeterminate.
                    record(marker, "indeterminate", source, target, amount)
                    connection.close()
                    connection = None
                    time.sleep(0.05)
            except redis.exceptions.TryAgainError:
                record(marker, "tryagain", source, target, amount)
                time.sleep(0.05)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as error:
                if isinstance(error, redis.ResponseError) and \
                        "outcome of the write is unknown" not in str(error):
                    failures.append(f"{marker}: {error!r}")
                    return
                # The node may be gone: resolve later by reading, and move on
                # to another node (or the same one, restarted).
                record(marker, "indeterminate", source, target, amount)
                connection.close()
                connection = None
                time.sleep(0.05)
        if connection is not None:
            connection.close()

    run_threads(threads, worker)
    assert not failures, failures
    assert counts["committed"] > 0, counts

    # Resolve: read every marker and every balance (no writer is left).
    markers = sorted(attempts)
    present = {}
    for at in range(0, len(markers), 200):
        chunk = markers[at:at + 200]
        values = read_retrying(ports, lambda c: c.mget(chunk))
        present.update({m: v for m, v in zip(chunk, values) if v is not None})
    balances = dict(zip(keys, (int(v) for v in read_retrying(ports, lambda c: c.mget(keys)))))
    expected = {k: OPENING for k in keys}
    resolved = {"happened": 0, "did_not": 0}
    for marker, (answer, source, target, amount) in attempts.items():
        happened = marker in present
        if happened:
            assert present[marker] == f"{source} {target} {amount}".encode(), (marker, present[marker])
            expected[source] -= amount
            expected[target] += amount
        if answer == "committed":
            assert happened, f"{marker} was acknowledged but is not there"
        elif answer in ("watch_retries", "tryagain"):
            assert not happened, f"{marker} was refused ({answer}) but happened"
        else:
            resolved["happened" if happened else "did_not"] += 1
    assert balances == expected, (balances, expected)
    assert sum(balances.values()) == OPENING * accounts, balances
    counts["indeterminate_resolved"] = resolved
    counts["total"] = sum(balances.values())
    return counts


def read_retrying(ports, read):
    """Reads through any node, retrying while nodes come back."""
    deadline = time.time() + 60
    while True:
        try:
            return read(client(random.choice(ports)))
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def total(ports, accounts):
    """Reads every account (MGET, a validated snapshot) and checks the total."""
    keys = [f"account:{i}" for i in range(accounts)]
    balances = [int(v) for v in read_retrying(ports, lambda c: c.mget(keys))]
    got = sum(balances)
    assert got == OPENING * accounts, (got, OPENING * accounts, balances)
    return {"total": got, "accounts": accounts}


def incr(ports, threads, each):
    """THREADS threads, spread over the nodes, each INCR one shared counter
    EACH times (and INCRBY/DECRBY pairs): no increment may be lost or doubled,
    so the counter ends at the sum of the acknowledged ones. TRYAGAIN (nothing
    written) is counted apart and allowed for a minority of them."""
    key = "counter"
    client(ports[0]).delete(key)
    failures = []
    lock = threading.Lock()
    totals = {"acknowledged": 0, "sum": 0, "tryagain": 0}

    def worker(index):
        connection = client(ports[index % len(ports)])

        def add(by):
            try:
                connection.incrby(key, by)
            except redis.exceptions.TryAgainError:
                with lock:
                    totals["tryagain"] += 1
                return
            with lock:
                totals["acknowledged"] += 1
                totals["sum"] += by

        try:
            for i in range(each):
                add(1)
                if i % 10 == 0:
                    add(7)
                    add(-7)
        except redis.RedisError as error:
            failures.append(repr(error))
        finally:
            connection.close()

    run_threads(threads, worker)
    assert not failures, failures
    values = [int(client(port).get(key)) for port in ports]
    assert values == [totals["sum"]] * len(ports), (values, totals)
    assert totals["tryagain"] * 10 < totals["acknowledged"], totals
    return {"counter": values[0], **totals}


def large_value(key, mebibytes):
    """MEBIBYTES MiB of random bytes, the same for the same KEY."""
    return random.Random(key).randbytes(mebibytes * 1024 * 1024)


def large(write_port, read_port, key, mebibytes):
    """A value of MEBIBYTES MiB written through one node comes back byte for
    byte through another."""
    value = large_value(key, mebibytes)
    assert client(write_port).set(key, value) is True
    back = client(read_port).get(key)
    assert back == value, (len(back or b""), len(value))
    assert client(read_port).strlen(key) == len(value)
    return {"bytes": len(value)}


def large_read(port, key, mebibytes):
    """The value `large` wrote for KEY, read back byte for byte through PORT."""
    back = client(port).get(key)
    assert back == large_value(key, mebibytes), len(back or b"")
    return {"bytes": len(back)}


def ports_of(text):
    return [int(p) for p in text.split(",")]


CHECKS = {
    "transfers": lambda a: transfers(ports_of(a[0]), float(a[1]), int(a[2]), int(a[3])),
    "total": lambda a: total(ports_of(a[0]), int(a[1])),
    "incr": lambda a: incr(ports_of(a[0]), int(a[1]), int(a[2])),
    "large": lambda a: large(int(a[0]), int(a[1]), a[2], int(a[3])),
    "large-read": lambda a: large_read(int(a[0]), a[1], int(a[2])),
}

if __name__ == "__main__":
    print(json.dumps(CHECKS[sys.argv[1]](sys.argv[2:])))
