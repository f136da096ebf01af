"""One unit of `npuconv build`, in a worker process of its own (`build_pool` starts it through
converter.process, so a signal to npuconv stops it).

Usage: python -m converter.pipeline.build_worker JOB.json
JOB: {"unit": Unit fields, "until", "force": [...], "forced": DIR (shared by the build's workers), "bundle_dir"}
stdout: one JSON event per line: {"event": "progress", "text"}, {"event": "row", "row"}, {"event": "warning",
"text"}, and last {"event": "result", "result"}. Everything else (C-level prints of Paddle and onnxsim, a
bug's traceback) goes to stderr, which the parent writes to the unit's build log.

The worker installs npuconv's signal handlers itself: on SIGTERM (what the parent sends when it is
interrupted) it stops its own children (the Paddle workers, atc and its process group), removes its
temporary files on the way out and exits with 128 + the signal number."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _events():
    """A stream for events on the real stdout; fd 1 itself goes to stderr from now on."""
    stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def emit(event: str, **data) -> None:
        stream.write(json.dumps({"event": event, **data}, default=str) + "\n")
        stream.flush()

    return emit


def main(job_path: str) -> int:
    from converter import process
    from converter.errors import Interrupted

    emit = _events()
    restore = process.install_signal_handlers()
    try:
        from converter.pipeline.build import build_unit
        from converter.pipeline.build_plan import Unit

        job = json.loads(Path(job_path).read_text(encoding="utf-8"))
        unit = Unit.from_job(job["unit"])
        result = build_unit(unit, until=job["until"], force=frozenset(job["force"]), forced=Path(job["forced"]),
                            bundle_dir=Path(job["bundle_dir"]) if job["bundle_dir"] else None,
                            on_row=lambda row: emit("row", row=row), progress=lambda text: emit("progress", text=text),
                            warn=lambda text: emit("warning", text=text))
        if process.interrupted():
            raise Interrupted(process.interrupted())
        emit("result", result=result)
        return 0
    except Interrupted as exc:
        return exc.exit_code
    except BaseException:
        signum = process.interrupted()
        if signum:
            return 128 + signum
        raise
    finally:
        process.exiting()
        process.stop_all()
        restore()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
