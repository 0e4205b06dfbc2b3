"""Running batch jobs on a Ray cluster: one actor per GPU (or CPU slot), the model loaded once
per actor, jobs handed to whichever actor is free.

Actors read the inputs and write the outputs themselves, so on a cluster of several machines the
jobs file's inputs and the output folder must be on a file system that every node sees at the
same path. Without an address a local cluster is started for the run and stopped after it; it is
kept on 127.0.0.1 (every Ray server of it listens, and every connection goes, on the loopback
address only), keeps its files in a temporary folder and sends no usage statistics.

Ray is an optional dependency (`pip install 'floatalk[ray]'`); it is imported only when a run starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.apps.batch import BatchEntry, Outcome, Runner, remove_partials, run_entry
from floatalk.errors import UserInputError, one_line

if TYPE_CHECKING:
    from floatalk.progress import Progress

__all__ = ["LOCAL", "BatchActor", "is_loopback", "local_cluster_env", "ray_runner"]

LOCAL = "local"
"""The address that starts a local cluster for the run."""

_LOOPBACK = "127.0.0.1"
_KILL_WAIT_S = 60.0
_CONNECT_S = 10.0


def local_cluster_env() -> dict[str, str]:
    """The environment that keeps Ray on 127.0.0.1. Ray turns a node address of 127.0.0.1 into the
    machine's network address unless its multi-machine mode is off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
    read when ray is imported); with the node address on 127.0.0.1 its servers listen on 127.0.0.1 only."""
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def is_loopback(address: str) -> bool:
    """Whether a Ray address ('HOST:PORT', 'ray://HOST:PORT') names this machine's loopback interface."""
    host = _host_port(address)[0]
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _host_port(address: str) -> tuple[str, int | None]:
    rest = address.split("://", 1)[-1].strip()
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return rest.strip("[]"), None
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """A one-sentence UserInputError when nothing answers at HOST:PORT (Ray itself would retry
    without end); addresses without a port ('auto') are left to Ray."""
    host, port = _host_port(address)
    if port is None:
        return
    try:
        socket.create_connection((host, port), timeout=_CONNECT_S).close()
    except OSError as exc:
        raise UserInputError(
            f"Nothing answers at the Ray address '{address}' ({exc.strerror or exc}); start the cluster with "
            "'ray start --head' there, or check the address."
        ) from None


class BatchActor:
    """A Ray actor (wrapped with ray.remote at run time) that loads the model once and renders entries."""

    def __init__(self, checkpoint: str, device: str) -> None:
        from floatalk.assets import resolve_model
        from floatalk.pipeline import FloatPipeline

        self.pipe = FloatPipeline.from_pretrained(resolve_model(checkpoint), device=device)

    def run(self, entry: BatchEntry, out_dir: str) -> Outcome:
        """Render one entry (see floatalk.apps.batch.run_entry)."""
        return run_entry(self.pipe, entry, out_dir)


def _import_ray(loopback: bool) -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if loopback:
        os.environ.update(local_cluster_env())
    try:
        import ray
    except ImportError:
        raise UserInputError("--ray needs Ray installed: pip install 'floatalk[ray]'.") from None
    if loopback:
        from ray._private import ray_constants

        # When ray was imported before the variable was set (a Python session), set what it decided.
        ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


@contextlib.contextmanager
def _cluster(address: str) -> Iterator[Any]:
    """ray, connected to the cluster at `address` (a local one started for 'local'), shut down after."""
    local = address == LOCAL
    if not local:
        _check_reachable(address)
    ray = _import_ray(local or is_loopback(address))
    temp = tempfile.mkdtemp(prefix="floatalk-ray-") if local else None
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if local:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # the cluster is ours alone, on 127.0.0.1
            ray.init(address="local", _node_ip_address=_LOOPBACK, include_dashboard=False, _temp_dir=temp, **quiet)
            nodes = {n["NodeManagerAddress"] for n in ray.nodes()}
            if nodes != {_LOOPBACK}:
                raise RuntimeError(f"the local Ray cluster registered {sorted(nodes)}, not {_LOOPBACK}")
        else:
            try:
                ray.init(address=address, **quiet)
            except ConnectionError as exc:
                raise UserInputError(f"Could not connect to the Ray cluster at '{address}': {exc}.") from None
        yield ray
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _actor_resources(ray: Any, device: str, actors: int | None, jobs: int) -> tuple[int, dict[str, float]]:
    """(how many actors, the resources each asks for): by default one per GPU (cuda) or CPU (cpu)
    of the cluster; more actors than slots share them (fractional resources)."""
    resources = ray.cluster_resources()
    kind = "GPU" if device == "cuda" else "CPU"
    slots = float(resources.get(kind, 0))
    if slots <= 0:
        what = "GPU" if device == "cuda" else "CPU"
        raise UserInputError(f"The Ray cluster has no {what}; start its nodes with one or use another --device.")
    count = max(1, min(actors or int(slots), jobs))
    share = min(1.0, slots / count) if count > slots else float(int(slots // count))
    if device == "cuda":
        return count, {"num_gpus": share, "num_cpus": 0}
    return count, {"num_cpus": share}


def ray_runner(
    address: str = LOCAL,
    *,
    actors: int | None = None,
    checkpoint: str = "bundled",
    device: str = "cpu",
    progress: Progress | None = None,
) -> Runner:
    """A floatalk.apps.batch runner that renders the entries on the Ray cluster at `address`
    ('local': a cluster on 127.0.0.1 started for the run). actors: how many (default one per
    GPU with device 'cuda', per CPU with 'cpu'); progress: told when Ray starts and how many actors run.

    On KeyboardInterrupt the actors are killed and their half-written files removed before the
    interrupt goes on."""
    from floatalk.assets import resolve_model

    resolve_model(checkpoint)  # a wrong folder fails here, in one sentence (each node resolves its own)

    def runner(entries: list[BatchEntry], out_dir: Path, finished: Callable[[Outcome], None]) -> None:
        if not entries:
            return
        if progress is not None:
            progress("starting Ray", 0, 0)
        with _cluster(address) as ray:
            count, resources = _actor_resources(ray, device, actors, len(entries))
            actor_class = ray.remote(max_restarts=0, max_task_retries=0, **resources)(BatchActor)
            workers = [actor_class.remote(checkpoint, device) for _ in range(count)]
            if progress is not None:
                progress(f"{count} Ray actors", 0, 0)
            _dispatch(ray, workers, entries, out_dir, finished)

    return runner


def _dispatch(
    ray: Any, workers: list[Any], entries: list[BatchEntry], out_dir: Path, finished: Callable[[Outcome], None]
) -> None:
    """Keep every worker busy with one entry until none is left; a worker that dies fails its entry."""
    queue = deque(entries)
    running: dict[Any, tuple[Any, BatchEntry]] = {}

    def give(worker: Any) -> None:
        if queue:
            entry = queue.popleft()
            running[worker.run.remote(entry, str(out_dir))] = (worker, entry)

    try:
        for worker in workers:
            give(worker)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            worker, entry = running.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:
                cause = one_line(exc, first_line=True)
                finished(Outcome(entry.line, entry.name, "failed", f"The Ray worker running it died ({cause})."))
                workers.remove(worker)
                if not workers:  # nothing left to run the rest on
                    while queue:
                        left = queue.popleft()
                        reason = f"No Ray worker was left to run it (the last one died: {cause})."
                        finished(Outcome(left.line, left.name, "failed", reason))
                continue
            finished(outcome)
            give(worker)
    except KeyboardInterrupt:
        for worker in workers:
            ray.kill(worker)
        if running:  # they resolve (with errors) once the actors are gone; then nothing writes any more
            ray.wait(list(running), num_returns=len(running), timeout=_KILL_WAIT_S)
        remove_partials(out_dir, {entry.name for _, entry in running.values()})
        for _, entry in running.values():
            if (out_dir / entry.name).exists():  # it finished as the interrupt came (outputs are atomic)
                finished(Outcome(entry.line, entry.name, "done"))
        raise
