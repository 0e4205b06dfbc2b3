"""`floatalk serve`: the HTTP API (FastAPI + uvicorn) over a durable job queue.

Jobs are kept in an SQLite database and files in --data-dir; a restart (even after kill -9)
runs the jobs that were queued, reruns the one that was running and keeps finished videos.
Nothing heavy is imported at the top: building the parser stays fast.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys

from floatalk.errors import UserInputError

DEFAULT_PORT = 8000
UI_PATH = "/ui"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="serve the HTTP API and the web page; talking videos rendered as queued jobs",
        description="Serve the HTTP API: POST /v1/jobs (multipart image + audio + options JSON), follow "
        "GET /v1/jobs/{id} or its /events, download /v1/jobs/{id}/video. Jobs survive restarts (kept in "
        "--data-dir). OpenAPI docs at /docs, the web page at /ui. See docs/SERVING.md.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    add_server_flags(p, DEFAULT_PORT)
    p.add_argument(
        "--token",
        default=os.environ.get("FLOATALK_TOKEN") or None,
        help="require 'Authorization: Bearer TOKEN' on every endpoint but /v1/health "
        "(default $FLOATALK_TOKEN; none: no authentication)",
    )
    p.add_argument(
        "--ui",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve the web page at /ui on the same queue (default; with --token the browser asks for the "
        "token as password); --no-ui serves the API only",
    )
    add_live_flags(p)
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default info)",
    )
    p.set_defaults(run=run)
    return p


def add_live_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the live endpoint (/v1/live): sessions at once and their bounds."""
    p.add_argument(
        "--live-sessions",
        type=int,
        default=1,
        metavar="N",
        help="live sessions at once at /v1/live, each with its own copy of the model, loaded when the server "
        "starts; one more is refused with close code 1013 (default 1; 0 turns live sessions off)",
    )
    p.add_argument(
        "--live-idle-s",
        type=float,
        default=30.0,
        metavar="S",
        help="a live session whose client sends nothing (or reads nothing) for S seconds is closed (default 30)",
    )
    p.add_argument(
        "--live-max-s",
        type=float,
        default=600.0,
        metavar="S",
        help="longest live session, in seconds of wall time and of audio received (default 600)",
    )
    p.add_argument(
        "--live-max-chunk-s",
        type=float,
        default=2.0,
        metavar="S",
        help="most audio one PCM message of a live session may hold, in seconds; more is refused with close code "
        "1009 (default 2)",
    )
    p.add_argument(
        "--live-min-speed",
        type=float,
        default=0.8,
        metavar="X",
        help="a live session whose model, measured at its start, makes frames slower than X times real time is "
        "refused (default 0.8; 0 runs every session, however late its frames come)",
    )


def live_limits(args: argparse.Namespace):
    """The live sessions' bounds (floatalk.apps.live.sessions.LiveLimits) the flags set; one sentence
    (UserInputError) for a value that cannot work."""
    from floatalk.apps.live.sessions import LiveLimits

    if not 0 <= args.live_sessions <= 64:
        raise UserInputError(f"--live-sessions must be from 0 to 64 (got {args.live_sessions}).")
    if min(args.live_idle_s, args.live_max_s, args.live_max_chunk_s) <= 0:
        raise UserInputError("--live-idle-s, --live-max-s and --live-max-chunk-s must be positive.")
    if not 0 <= args.live_min_speed <= 10:
        raise UserInputError(f"--live-min-speed must be from 0 to 10 (got {args.live_min_speed:g}).")
    return LiveLimits(
        max_sessions=args.live_sessions,
        idle_s=args.live_idle_s,
        max_s=args.live_max_s,
        max_chunk_s=args.live_max_chunk_s,
        min_speed=args.live_min_speed,
    )


def add_server_flags(p: argparse.ArgumentParser, port: int) -> None:
    """The flags `floatalk serve` and `floatalk ui` share: port, model, queue folder, workers, limits."""
    p.add_argument("--port", type=int, default=port, help=f"TCP port to listen on (default {port}; 0 picks a free one)")
    p.add_argument(
        "--checkpoint",
        default="bundled",
        metavar="DIR",
        help="model folder the workers load, as for 'floatalk generate' (default: the bundled demo model)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="where the job database, uploads and videos are kept; jobs survive restarts "
        "(default $FLOATALK_DATA or ./floatalk-data)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="jobs rendered at once; each worker loads the model once (default 1)"
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the workers run (default cpu)")
    p.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest request body in MB, refused with 413 (default 50)"
    )
    p.add_argument(
        "--max-audio-seconds", type=float, default=60.0, help="longest recording accepted, in seconds (default 60)"
    )
    p.add_argument(
        "--max-image-pixels",
        type=int,
        default=4096 * 4096,
        help="largest photo accepted, width x height in pixels, read before decoding (default 16777216)",
    )
    p.add_argument(
        "--max-queued", type=int, default=32, help="jobs that may wait; past it submissions get 503 (default 32)"
    )
    p.add_argument(
        "--min-free-mb",
        type=float,
        default=256.0,
        help="disk space the data folder keeps free: below it submissions get 507 and workers wait (default 256)",
    )
    p.add_argument(
        "--max-uploads", type=int, default=8, help="request bodies received at once; past it 503 (default 8)"
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a client has to send a request's headers, else 408 (default 10)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds a client has to send a request's whole body, else 408 (default 300)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name requests may name in Host, e.g. a reverse proxy's public name (repeatable); "
        "the addresses the server listens on are always allowed",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a site (scheme://host[:port]) whose pages may send jobs and read answers (repeatable; default none: "
        "browsers may use the API only from the server's own pages)",
    )


def check_server_flags(args: argparse.Namespace) -> None:
    """One sentence (UserInputError) for a value of `add_server_flags`' flags that cannot work."""
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port must be from 0 to 65535 (got {args.port}).")
    if args.workers < 1:
        raise UserInputError(f"--workers must be at least 1 (got {args.workers}).")
    if args.max_upload_mb <= 0 or args.max_audio_seconds <= 0 or args.max_image_pixels < 1 or args.max_queued < 1:
        raise UserInputError("The --max-* limits must be positive.")
    if args.max_uploads < 1 or args.header_timeout <= 0 or args.body_timeout <= 0 or args.min_free_mb < 0:
        raise UserInputError(
            "--max-uploads, --header-timeout and --body-timeout must be positive, --min-free-mb not negative."
        )
    host_rules(args, "127.0.0.1")  # a bad --allow-origin is one sentence now


def host_rules(args: argparse.Namespace, listen: str):
    """The Host names and other origins the flags allow (floatalk.apps.hosts.HostRules)."""
    from floatalk.apps.hosts import HostRules

    try:
        return HostRules(listen, tuple(args.allowed_host), tuple(args.allow_origin))
    except ValueError as exc:
        raise UserInputError(f"--allow-origin takes an origin such as https://app.example ({exc}).") from None


def limits_from(args: argparse.Namespace):
    """The upload limits (floatalk.apps.uploads.Limits) the flags set."""
    from floatalk.apps.uploads import Limits

    return Limits(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_audio_seconds=args.max_audio_seconds,
        max_image_pixels=args.max_image_pixels,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_uploads=args.max_uploads,
    )


def _check(args: argparse.Namespace) -> None:
    check_server_flags(args)
    live_limits(args)
    if args.token is not None and not args.token.strip():
        raise UserInputError("--token must not be empty.")
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        raise UserInputError(f"--host must be an IP address or 'localhost' (got {args.host!r}).") from None
    if not loopback and not args.token:
        raise UserInputError(f"Listening on {args.host}, beyond this machine, needs --token.")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from floatalk.apps.live.page import LIVE_PATH
    from floatalk.apps.queue import Workers, data_dir_default
    from floatalk.apps.server import create_app
    from floatalk.assets import resolve_model
    from floatalk.model_folders import read_config

    read_config(resolve_model(args.checkpoint))  # a wrong model folder fails now, in one sentence

    if args.workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
    data_dir = args.data_dir or data_dir_default()
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]
    try:
        queue = open_queue(args, data_dir)
        workers = Workers(queue, checkpoint=args.checkpoint, count=args.workers, device=args.device)
        limits = limits_from(args)
        page = UI_PATH if args.ui else None
        rules = host_rules(args, args.host)
        live = None
        if args.live_sessions:
            from floatalk.apps.live.sessions import LivePool

            live = LivePool(args.checkpoint, args.device, live_limits(args))
            live.preload()  # beside the workers' own copies
        app = create_app(queue, workers, limits=limits, token=args.token, page_prefix=page, rules=rules, live=live)
        if page is not None:
            from floatalk.apps.ui import mount_ui

            example = os.path.join(data_dir, "example")
            app = mount_ui(app, queue, page, example_dir=example, limits=limits, live_path=LIVE_PATH)
        host = f"[{args.host}]" if ":" in args.host else args.host
        where = f"; the page at http://{host}:{port}{UI_PATH}/, live at {LIVE_PATH}/" if page else ""
        data = os.path.abspath(data_dir)
        sessions = f", {args.live_sessions} live session(s) at /v1/live" if live else ""
        banner = f"floatalk serve: http://{host}:{port}, data in {data}; {args.workers} worker(s){sessions}{where}"
        serve_until_stopped("floatalk serve", app, sock, workers, banner, limits, log_level=args.log_level)
    finally:
        sock.close()
    return 0


def open_queue(args: argparse.Namespace, data_dir):
    """The data folder's job queue (StorageFullError, one sentence, when the disk has no room to
    open it); one short of disk space opens degraded, and a line on stderr says so."""
    from floatalk.apps.queue import JobQueue

    queue = JobQueue(data_dir, max_queued=args.max_queued, min_free_bytes=int(args.min_free_mb * 1024 * 1024))
    short = queue.space_short()
    if short:
        print(f"floatalk {args.command}: warning: {short}", file=sys.stderr, flush=True)
    return queue


def listen(host: str, port: int):
    """A TCP socket listening on host:port (port 0: a free one); a port in use or not allowed is
    one sentence."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise UserInputError(f"Cannot listen on {host}:{port} ({reason}); choose another --port.") from None
    return sock


def serve_until_stopped(name: str, app, sock, workers, banner: str, limits, log_level: str = "warning") -> None:
    """Start the model workers, print `banner` and serve `app` on `sock` (a `listen` socket, closed
    by its owner) until Ctrl-C or SIGTERM; then stop the workers (a running job stops within one
    window and goes back to the queue)."""
    import uvicorn

    from floatalk.apps.server.auth import redact_tokens_in_logs
    from floatalk.apps.server.slow_headers import header_timeout_protocol

    def stop(signum: int, frame: object) -> None:
        # uvicorn stops serving on SIGINT/SIGTERM, then raises the signal again once it has
        # returned; this turns that SIGTERM into an exit that still runs the `finally` below.
        print(f"{name}: stopped; jobs that were running go back to the queue.", file=sys.stderr)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    workers.start()
    try:
        print(banner, file=sys.stderr, flush=True)
        http = header_timeout_protocol(limits.header_timeout_s)
        # WebSocket messages: a live session's start message carries the photo (base64) within the
        # upload limit; frames are JPEGs already, so compressing them again would only cost time.
        ws_max_size = limits.max_upload_bytes * 4 // 3 + 65536
        config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            http=http,
            ws_max_size=ws_max_size,
            ws_per_message_deflate=False,
        )
        redact_tokens_in_logs()
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        workers.stop()
        signal.signal(signal.SIGTERM, previous)
