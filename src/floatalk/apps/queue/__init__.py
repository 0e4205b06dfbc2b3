"""A durable job queue for the apps: the store of jobs in a data folder (`store`, its records in
`records`) and the threads that run them (`workers`). The HTTP API, the web page and the CLI
use the names below.

Nothing heavy is imported here: torch and the model are loaded by `Workers.start`.
"""

from floatalk.apps.queue.disk import StorageFullError, is_disk_full
from floatalk.apps.queue.records import FINAL_STATES, STATES, JobRecord
from floatalk.apps.queue.store import MAX_ATTEMPTS, POSE_VIDEO, JobQueue, QueueFullError, data_dir_default
from floatalk.apps.queue.workers import JobProgress, Workers

__all__ = [
    "FINAL_STATES",
    "MAX_ATTEMPTS",
    "POSE_VIDEO",
    "STATES",
    "JobProgress",
    "JobQueue",
    "JobRecord",
    "QueueFullError",
    "StorageFullError",
    "Workers",
    "data_dir_default",
    "is_disk_full",
]
