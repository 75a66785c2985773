"""The server's speed: requests per second and latency of `toolkit serve` under a bounded load.

For each model (default `ngram` and `scratch-rnn`, each trained one epoch on the names data, seed
0) it starts `toolkit serve --run RUN --port 0` on 127.0.0.1 in a process of its own (the default
runtime, auto: numpy for a model with a numpy forward pass, torch for the others) and drives it
from this process with a bounded load generator: `--clients` threads (default 4), each with its
own keep-alive HTTP connection, sending requests one after another until the fixed number of
requests is spent (nothing is queued beyond one request per client). Two workloads:

- single names: `GET /predict/{name}`, `--singles` requests (default 3,000);
- batches: `POST /predict` with 1,000 names (the server's default `--max-batch`), `--batches`
  requests (default 60).

The names are drawn with replacement from the names data (seed 0). A warm-up of 50 requests
comes first and is not counted. For each it reports requests/s, names/s, and the latency's
median (p50) and 99th percentile (p99), with the load average before and after; `--write FILE`
puts the table in FILE's "Server speed" section. Only 127.0.0.1 is ever contacted. Usage:

    python bench/server_speed.py --write docs/benchmarks.md
    python bench/server_speed.py --models ngram --singles 500 --batches 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_speed import ONE_THREAD, train_names_run  # noqa: E402
from scale_common import publish  # noqa: E402
from train_bench import load, machine, markdown  # noqa: E402

import toolkit  # noqa: E402

SECTION = "## Server speed (`bench/server_speed.py`)"
HOST = "127.0.0.1"
BATCH = 1_000
WARM_UP = 50


def start_server(run: Path) -> tuple[subprocess.Popen[str], int]:
    """`toolkit serve` on a free port of 127.0.0.1; returns the process and its port."""
    server = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "serve", "--run", str(run), "--host", HOST, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **ONE_THREAD},
    )
    assert server.stdout is not None
    for line in server.stdout:  # "Playground: http://127.0.0.1:PORT/   API docs: ..."
        if line.startswith("Playground:"):
            port = int(line.split()[1].rstrip("/").rsplit(":", 1)[1])
            break
    else:
        raise SystemExit(f"toolkit serve --run {run} did not start")
    threading.Thread(target=server.stdout.read, daemon=True).start()  # keep its pipe drained
    for _ in range(200):
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"toolkit serve --run {run} did not answer /health")


Request = tuple[str, str, bytes | None]


def drive(port: int, requests: list[Request], clients: int) -> tuple[float, list[float]]:
    """Send `requests` (method, path, body) from `clients` threads, each on its own keep-alive
    connection, one request at a time; returns the wall seconds and every request's latency."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = iter(requests)
    failures: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        headers = {"Content-Type": "application/json"}
        while True:
            with lock:
                job = next(queue, None)
            if job is None:
                return
            method, path, body = job
            started = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                if response.status != 200:
                    failures.append(f"{method} {path[:40]}: HTTP {response.status}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"the server refused requests: {failures[:3]}")
    return seconds, latencies


def workloads(names: list[str], singles: int, batches: int, seed: int) -> dict[str, tuple[int, list[Any]]]:
    rng = random.Random(seed)
    single = [("GET", "/predict/" + urllib.parse.quote(rng.choice(names), safe=""), None)
              for _ in range(singles)]
    batch = [("POST", "/predict", json.dumps([rng.choice(names) for _ in range(BATCH)]).encode())
             for _ in range(batches)]
    return {"single name, GET /predict/{name}": (1, single),
            f"{BATCH:,} names, POST /predict": (BATCH, batch)}


def measure(model: str, folder: Path, names: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    run = folder / f"run-{model}"
    train_names_run(model, run, args.seed, epochs=1)
    server, port = start_server(run)
    rows = []
    try:
        for workload, (size, requests) in workloads(names, args.singles, args.batches, args.seed).items():
            drive(port, requests[:WARM_UP], args.clients)
            seconds, latencies = drive(port, requests, args.clients)
            cuts = statistics.quantiles(latencies, n=100)
            rows.append({
                "model": model, "requests": workload, "count": len(requests),
                "requests_per_s": len(requests) / seconds, "names_per_s": len(requests) * size / seconds,
                "p50_ms": statistics.median(latencies) * 1000, "p99_ms": cuts[98] * 1000,
            })
            print(f"  {model}, {workload}: {rows[-1]['requests_per_s']:,.1f} requests/s, p50 "
                  f"{rows[-1]['p50_ms']:.1f} ms, p99 {rows[-1]['p99_ms']:.1f} ms ({load()})", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ngram,scratch-rnn", help="Comma-separated toolkit models.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent client connections.")
    parser.add_argument("--singles", type=int, default=3_000, help="Single-name requests.")
    parser.add_argument("--batches", type=int, default=60, help=f"POSTs of {BATCH:,} names.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the section in FILE (Markdown).")
    args = parser.parse_args(argv)
    before = load()
    print(f"Machine: {machine()}\nBefore: {before}", flush=True)
    names = list(toolkit.load_registry().dataset("names").load().texts)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models.split(","):
            rows += measure(model, Path(scratch), names, args)
    after = load()
    command = "python bench/server_speed.py" + "".join(
        f" --{k} {v}" for k, v in (("models", args.models), ("clients", args.clients),
                                   ("singles", args.singles), ("batches", args.batches)))
    text = "\n".join([
        SECTION, "",
        f"`{command}` on {machine()}; {before} before, {after} after.",
        "",
        "`toolkit serve` (one process, one thread, its default runtime: numpy for a model with a numpy "
        "forward pass, torch for the others) on 127.0.0.1, runs trained one epoch on the "
        f"names data; {args.clients} client threads on keep-alive connections, one request in flight each, "
        f"names drawn from the names data; after {WARM_UP} uncounted warm-up requests. Latency is "
        "the client's,"
        " request sent to response read.",
        "",
        markdown(pd.DataFrame(rows), {"requests_per_s": ",.1f", "names_per_s": ",.0f", "p50_ms": ".1f",
                                      "p99_ms": ".1f", "count": ",d"}),
        "", "",  # a blank line before the next section's heading
    ])
    publish(text, SECTION, args.write)


if __name__ == "__main__":
    main()
