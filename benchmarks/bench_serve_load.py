"""Load on `floatalk serve`: concurrent submissions over loopback HTTP, all of them finishing.

A server (bundled model, --workers 2, --max-queued 16, a temporary data folder) is started on a
free port of 127.0.0.1. Then --jobs (default 20) clients submit the example (a synthetic
portrait and --seconds of speech) at once; a client answered 503 waits the Retry-After the
server gave and submits again. While the queue is full, --probes (default 3) more submissions
check that it answers 503 with a Retry-After. Every client follows its job's server-sent
events to the end.

Reported: submit -> done latency (p50, p95, max; counted from a client's first attempt),
throughput (jobs per minute from the first submission to the last job done), the 503 answers,
and the RSS of the server's process tree after the first 5 jobs are done and after all of them
(flat memory: the second is not much above the first).

    python benchmarks/bench_serve_load.py [--jobs 20] [--workers 2] [--max-queued 16] [--json PATH]

Exit status 1 when a job did not finish done or no 503 was seen past the queue's limit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import floatalk_command, machine, print_machine, write_json

DEADLINE_S = 600.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants, in MiB (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=20, help="concurrent submissions (default 20)")
    p.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    p.add_argument("--max-queued", type=int, default=16, help="the server's queue limit (default 16)")
    p.add_argument("--probes", type=int, default=3, help="submissions past the limit, expecting 503 (default 3)")
    p.add_argument("--seconds", type=float, default=2.0, help="speech per job in seconds (default 2)")
    p.add_argument("--floatalk", metavar="CMD", help="how to run floatalk (default: found, see _common)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.jobs < 5:
        p.error("--jobs must be at least 5")

    import httpx

    from floatalk.apps.examples import EXAMPLE_OPTIONS, write_example

    info = machine()
    print_machine(info)
    floatalk = floatalk_command(args.floatalk)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    example = write_example(tmp / "example", seconds=args.seconds)
    image, audio = example.image.read_bytes(), example.audio.read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [*floatalk, "serve", "--port", str(port), "--data-dir", str(tmp / "data"), "--log-level", "warning"]
    command += ["--workers", str(args.workers), "--max-queued", str(args.max_queued)]
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    print(f"server: {' '.join(command)} (pid {server.pid})")
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {(tmp / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=5).json().get("status") == "ok":
                    break
            except (httpx.TransportError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become ready")
            time.sleep(0.2)
        rss_idle = tree_rss_mib(server.pid)
        print(f"ready; server tree RSS {rss_idle:.0f} MiB; {args.jobs} clients submit at once\n")

        results: list[dict] = []
        lock = threading.Lock()
        accepted = threading.Semaphore(0)
        done_count = [0]
        rss_after_5: list[float] = []

        def post(client: httpx.Client) -> httpx.Response:
            files = {"image": ("portrait.png", image), "audio": ("speech.wav", audio)}
            return client.post("/v1/jobs", files=files, data={"options": json.dumps(EXAMPLE_OPTIONS)})

        def one_client(n: int) -> None:
            row: dict = {"client": n, "refused_503": 0}
            with httpx.Client(base_url=base, timeout=120) as client:
                row["submitted"] = time.monotonic()
                while True:
                    answer = post(client)
                    if answer.status_code == 202:
                        break
                    if answer.status_code != 503:
                        row["state"] = f"HTTP {answer.status_code}: {answer.text}"
                        with lock:
                            results.append(row)
                        accepted.release()
                        return
                    row["refused_503"] += 1
                    time.sleep(int(answer.headers["retry-after"]))
                accepted.release()
                job_id = answer.json()["id"]
                record: dict = {}
                with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=DEADLINE_S) as events:
                    for line in events.iter_lines():
                        if line.startswith("data: "):
                            record = json.loads(line[6:])
                            if record["state"] in ("done", "failed", "cancelled"):
                                break
                row.update(finished=time.monotonic(), state=record.get("state"), id=job_id)
            with lock:
                results.append(row)
                done_count[0] += 1
                if done_count[0] == 5:
                    rss_after_5.append(tree_rss_mib(server.pid))

        threads = [threading.Thread(target=one_client, args=(n,)) for n in range(args.jobs)]
        t0 = time.monotonic()
        for thread in threads:
            thread.start()
        # Probe while the queue is full: wait until it is (or every client got in), then submit more.
        probes: list[dict] = []
        with httpx.Client(base_url=base, timeout=120) as client:
            while time.monotonic() - t0 < DEADLINE_S:
                health = client.get("/v1/health").json()
                if health["queued"] >= args.max_queued or done_count[0] >= args.jobs:
                    break
                time.sleep(0.05)
            for _ in range(args.probes):
                answer = post(client)
                probes.append({"status": answer.status_code, "retry_after": answer.headers.get("retry-after")})
                if answer.status_code == 202:
                    client.delete(f"/v1/jobs/{answer.json()['id']}")
        for thread in threads:
            thread.join(DEADLINE_S)
        t_end = time.monotonic()
        rss_end = tree_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(60)
        log.close()

    latencies = [r["finished"] - r["submitted"] for r in results if r.get("state") == "done"]
    all_done = len(latencies) == args.jobs
    refused = sum(r["refused_503"] for r in results)
    probe_503 = sum(1 for pr in probes if pr["status"] == 503)
    last_done = max((r["finished"] for r in results if "finished" in r), default=t_end)
    throughput = len(latencies) / (last_done - t0) * 60 if latencies else 0.0
    summary = {
        "jobs": args.jobs,
        "done": len(latencies),
        "workers": args.workers,
        "max_queued": args.max_queued,
        "seconds_of_speech": args.seconds,
        "latency_p50_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": percentile(latencies, 95) if latencies else None,
        "latency_max_s": max(latencies) if latencies else None,
        "throughput_jobs_per_min": throughput,
        "wall_s": last_done - t0,
        "refused_503_in_burst": refused,
        "probes": probes,
        "rss_idle_mib": rss_idle,
        "rss_after_5_mib": rss_after_5[0] if rss_after_5 else None,
        "rss_after_all_mib": rss_end,
    }
    print("| measure | value |")
    print("|---|---|")
    print(f"| jobs done | {len(latencies)} of {args.jobs} ({args.workers} workers, max queued {args.max_queued}) |")
    if latencies:
        p50, p95, worst = summary["latency_p50_s"], summary["latency_p95_s"], summary["latency_max_s"]
        print(f"| submit -> done p50 / p95 / max | {p50:.1f} / {p95:.1f} / {worst:.1f} s |")
    print(f"| throughput | {throughput:.1f} jobs/min ({summary['wall_s']:.1f} s for the batch) |")
    print(f"| 503 answers | {refused} in the burst (clients retried after Retry-After); probes: {probes} |")
    after5 = f"{summary['rss_after_5_mib']:.0f}" if rss_after_5 else "-"
    print(f"| server tree RSS idle / after 5 / after all | {rss_idle:.0f} / {after5} / {rss_end:.0f} MiB |")
    ok = all_done and (probe_503 > 0 or refused > 0)
    print(f"\n{'PASS' if ok else 'FAIL'}: every job done, and 503 answered past the queue's limit")
    if args.json:
        write_json(args.json, {"benchmark": "serve_load", "machine": info, "floatalk": floatalk, **summary, "pass": ok})
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"the server's data folder and log are kept in {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
