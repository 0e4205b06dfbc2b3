"""`floatalk ui`: the web page on its own, with a job queue in a data folder and model workers.

The page (floatalk.apps.ui) is served at http://127.0.0.1:PORT/ui/ on the loopback interface
only; jobs are kept in --data-dir (the same folder layout as `floatalk serve`, so a restart
keeps them). Only argparse is imported at the top: `floatalk --help` stays fast.
"""

from __future__ import annotations

import argparse

from floatalk.cli.serve import (
    UI_PATH,
    add_server_flags,
    check_server_flags,
    host_rules,
    limits_from,
    listen,
    open_queue,
    serve_until_stopped,
)

HOST = "127.0.0.1"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ui",
        help="serve the web page (photo + speech in, talking video out) on 127.0.0.1",
        description="Serve the web page at http://127.0.0.1:PORT/ui/ (on this machine only): upload or take a "
        "photo, upload or record speech, set the motion controls and a timeline, and watch the job's progress. "
        "Jobs wait in a durable queue in --data-dir and are run by --workers model workers.",
    )
    add_server_flags(p, 7860)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import os
    import tempfile
    from pathlib import Path

    from floatalk.errors import UserInputError

    check_server_flags(args)
    missing = [name for name in ("gradio", "fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserInputError(f"floatalk ui needs {', '.join(missing)}: pip install 'floatalk[ui]'.")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    from floatalk.apps.queue import Workers, data_dir_default
    from floatalk.assets import resolve_model

    limits = limits_from(args)
    checkpoint = str(resolve_model(args.checkpoint))  # a wrong folder fails here, in one sentence
    data_dir = Path(args.data_dir) if args.data_dir else data_dir_default()
    sock = listen(HOST, args.port)
    port = sock.getsockname()[1]

    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from floatalk.apps.server import protect
    from floatalk.apps.ui import mount_ui

    try:
        queue = open_queue(args, data_dir)
        workers = Workers(queue, checkpoint=checkpoint, count=args.workers, device=args.device)
        app = FastAPI(title="floatalk ui", docs_url=None, redoc_url=None, openapi_url=None)
        app.get("/", include_in_schema=False)(lambda: RedirectResponse(f"{UI_PATH}/"))
        protect(app, limits, host_rules(args, HOST))
        with tempfile.TemporaryDirectory(prefix="floatalk-example-") as example_dir:
            mount_ui(app, queue, UI_PATH, example_dir=example_dir, limits=limits)
            banner = f"floatalk ui: serving http://{HOST}:{port}{UI_PATH}/ (jobs in {data_dir})"
            serve_until_stopped("floatalk ui", app, sock, workers, banner, limits)
    finally:
        sock.close()
    return 0
