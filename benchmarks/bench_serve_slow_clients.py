"""Slow clients against `floatalk serve`: --clients raw sockets each send a job's headers and then
trickle its body at 1 KiB/s (the issue's attack: 200 such uploads held 400 descriptors and 200
temporary files for ever).

The server runs with the default limits except --body-timeout (default 20 s, so that a run is
short; the default of 300 s behaves alike, only longer) and --no-ui. Reported: how many clients
were answered 503 at once and how fast, how many were answered 408, when, the server's open file
descriptors and the files in its incoming/ folder while the clients trickle and after the
timeout, and whether the server still answers /v1/health.

    python benchmarks/bench_serve_slow_clients.py [--clients 200] [--body-timeout 20] [--json PATH]

Exit status 1 when a client was held past the timeout, a file was left, or the descriptors did
not come back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import floatalk_command, machine, print_machine, write_json

BOUNDARY = "benchBoundary"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, body_timeout: float, command: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    flags = ["--port", str(port), "--data-dir", str(data), "--no-ui", "--body-timeout", str(body_timeout)]
    proc = subprocess.Popen([*command, "serve", *flags, "--log-level", "error"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if b'"status":"ok"' in s.recv(65536):
                    return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.5)


def server_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def client(port: int, results: list, stop: threading.Event) -> None:
    """One slow upload: headers at once, then 1 KiB a second until the server answers."""
    start = time.monotonic()
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: 10000000\r\n\r\n--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    )
    status, sock = 0, socket.create_connection(("127.0.0.1", port), timeout=600)
    sock.setblocking(False)
    try:
        sock.sendall(head.encode())
        next_send = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= next_send:
                with contextlib.suppress(BlockingIOError, OSError):  # the server stopped reading, or hung up
                    sock.send(b"x" * 1024)
                next_send += 1.0
            readable, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
            if readable:
                data = sock.recv(65536)
                status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1
                break
    finally:
        sock.close()
    results.append((status, time.monotonic() - start))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=200, help="slow uploads at once (default 200)")
    p.add_argument("--body-timeout", type=float, default=20.0, help="the server's --body-timeout (default 20)")
    p.add_argument("--floatalk", metavar="CMD", help="how to run floatalk (default: found, see _common)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    info = machine()
    print_machine(info)
    with tempfile.TemporaryDirectory(prefix="floatalk-slow-") as folder:
        data = Path(folder) / "data"
        proc, port = start_server(data, args.body_timeout, floatalk_command(args.floatalk))
        try:
            idle_fds = server_fds(proc.pid)
            results: list = []
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(port, results, stop)) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            time.sleep(5.0)
            during = {"fds": server_fds(proc.pid), "incoming_files": len(list((data / "incoming").iterdir()))}
            for thread in threads:
                thread.join(args.body_timeout + 30)
            stop.set()
            time.sleep(1.0)
            after = {"fds": server_fds(proc.pid), "incoming_files": len(list((data / "incoming").iterdir()))}
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                healthy = s.recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            proc.terminate()
            proc.wait(60)
    refused = [s for status, s in results if status == 503]
    timed_out = [s for status, s in results if status == 408]
    report = {
        "machine": info,
        "clients": args.clients,
        "body_timeout_s": args.body_timeout,
        "answered_503": len(refused),
        "slowest_503_s": round(max(refused, default=0.0), 3),
        "answered_408": len(timed_out),
        "408_after_s": [round(min(timed_out, default=0.0), 2), round(max(timed_out, default=0.0), 2)],
        "other_answers": sorted({status for status, _ in results} - {503, 408}),
        "server_fds": {"idle": idle_fds, "during": during["fds"], "after": after["fds"]},
        "incoming_files": {"during": during["incoming_files"], "after": after["incoming_files"]},
        "healthy_after": healthy,
    }
    for key, value in report.items():
        if key != "machine":
            print(f"{key}: {value}")
    if args.json:
        write_json(args.json, report)
    held = max(timed_out, default=0.0) > args.body_timeout + 5 or report["other_answers"]
    left = after["incoming_files"] or after["fds"] > idle_fds + 2 or not healthy
    return 1 if held or left else 0


if __name__ == "__main__":
    sys.exit(main())
