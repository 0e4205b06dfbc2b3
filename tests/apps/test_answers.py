"""The API's wording: a job's error names generate's flags as the options JSON sets them."""

from __future__ import annotations

from floatalk.apps.queue import JobRecord
from floatalk.apps.server.answers import api_words, job_json


def test_flags_in_a_sentence_become_json_options():
    no_face = "No face found in the image; pass --no-crop to animate the whole photo."
    assert api_words(no_face) == 'No face found in the image; send "crop": false to animate the whole photo.'
    mesh = "The face mesh model is missing (pip install -e .) or pass --detector haar."
    assert api_words(mesh).endswith('or send "detector": "haar".')
    plain = "The recording is longer than 60 s, the longest this server accepts."
    assert api_words(plain) == plain


def test_a_failed_jobs_error_is_shown_in_the_apis_words():
    record = JobRecord(
        id="a" * 32,
        state="failed",
        stage="emotion",
        progress=0.1,
        error="No face found in the video 'pose_video.mp4'; pass --no-crop to use whole frames.",
        created=0.0,
        started=0.0,
        finished=1.0,
    )
    body = job_json(record)
    assert "--no-crop" not in body["error"] and '"crop": false' in body["error"] and body["video"] is None
