"""Child processes that end with npuconv.

Every child (the Paddle workers, atc) is started here from an argv list in its own session, so that its
process group id is its pid and stopping it reaches whatever it started too (atc runs compilers). A
registry keeps the children that have not been reaped. When npuconv is interrupted (SIGINT, SIGTERM,
SIGHUP) the handler stops every registered child first, so none writes into a directory that is being
cleaned up, and then raises `Interrupted` in the main thread, so that `finally` blocks remove temporary
files on the way out. An `atexit` hook stops whatever is left when the interpreter exits.

Stopping a child: SIGTERM to its process group, SIGKILL to the group after a short grace, then reap."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from converter.errors import Interrupted

GRACE_S = 2.0
HANDLED = ("SIGINT", "SIGTERM", "SIGHUP")

# pid -> Popen of every started, not yet reaped child. Plain dict operations are atomic under the GIL, and
# a signal handler must never wait for a lock that the code it interrupted holds.
_children: dict[int, subprocess.Popen] = {}
# pid -> the grace a child needs beyond GRACE_S: a child that stops children of its own on SIGTERM (an
# `npuconv build` worker) must outlive their grace, or its grandchildren would be orphaned.
_graces: dict[int, float] = {}
_atexit_registered = False
_defer_depth = 0
_pending: int | None = None
_interrupted: int | None = None


def start(argv: Sequence[str], *, grace: float | None = None, **popen_kwargs) -> subprocess.Popen:
    """`subprocess.Popen(argv, ...)` in a new session, registered until `wait`/`stop` reaps it. `grace`: how
    long this child gets between SIGTERM and SIGKILL when it is stopped with a grace (default GRACE_S; more
    for a child that itself stops children on SIGTERM). An OSError (no such executable, not executable)
    propagates as Popen raises it."""
    global _atexit_registered
    if isinstance(argv, (str, bytes)) or popen_kwargs.get("shell"):
        raise TypeError("process.start takes an argv list, never a shell string")
    for key in ("start_new_session", "process_group", "preexec_fn"):
        if key in popen_kwargs:
            raise TypeError(f"process.start sets the session itself; {key} is not accepted")
    if not _atexit_registered:
        atexit.register(stop_all)
        _atexit_registered = True
    with deferred_signals():  # a signal between fork and registration would orphan the child
        proc = subprocess.Popen(list(argv), start_new_session=True, **popen_kwargs)
        _children[proc.pid] = proc
        if grace is not None:
            _graces[proc.pid] = grace
    return proc


def wait(proc: subprocess.Popen, timeout: float | None = None) -> int:
    """Wait for a child to exit (subprocess.TimeoutExpired after `timeout`), reap and unregister it; any
    process it left behind in its group is killed. Returns its exit code (negative: killed by a signal)."""
    rc = proc.wait(timeout)
    _forget(proc)
    return rc


def stop(proc: subprocess.Popen, grace: float = GRACE_S) -> int | None:
    """End a child and everything in its process group: SIGTERM, SIGKILL after `grace` seconds (at once when
    `grace` is 0), then reap. A child that already exited is only reaped. Returns its exit code."""
    _stop_many([proc], grace)
    return proc.returncode


def stop_all(grace: float = GRACE_S) -> int:
    """Stop every registered child (all at once, one grace period); returns how many were running."""
    procs = list(_children.values())
    running = sum(not _exited(p) for p in procs)
    _stop_many(procs, grace)
    return running


def running() -> list[int]:
    """Pids of the registered children that have not exited."""
    return [pid for pid, p in list(_children.items()) if not _exited(p)]


def _exited(proc: subprocess.Popen) -> bool:
    """Whether a child has exited, without reaping it: Popen's own poll() gives up while a wait() that a
    signal handler interrupted holds its lock."""
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # macOS
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_exited(procs: list[subprocess.Popen], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(_exited(p) for p in procs):
        time.sleep(0.02)


def _stop_many(procs: list[subprocess.Popen], grace: float) -> None:
    live = [p for p in procs if not _exited(p)]
    for p in live:
        _signal_group(p.pid, signal.SIGKILL if grace <= 0 else signal.SIGTERM)
    if grace > 0:
        grace = max([grace, *(_graces.get(p.pid, 0.0) for p in live)])
    _wait_exited(live, grace)
    for p in live:
        if not _exited(p):
            _signal_group(p.pid, signal.SIGKILL)
    _wait_exited(live, 5.0)  # SIGKILL cannot be ignored: only a process stuck in the kernel takes longer
    for p in procs:
        if p.poll() is not None:  # reaps it (unless an interrupted wait() holds it: the next stop_all does)
            _forget(p)


def _forget(proc: subprocess.Popen) -> None:
    """Unregister a reaped child and kill what it left in its group (a compiler atc started, say), waiting
    a moment for those to go (they are not ours to reap)."""
    _graces.pop(proc.pid, None)
    if _children.pop(proc.pid, None) is None:
        return
    _signal_group(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


# ---- signals ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Raise a signal that arrives inside the block only at its end (children are stopped at once). For
    native code that calls back into Python (onnxsim runs ONNX Runtime through a Python callback) and for
    importing native modules: an exception raised inside them can abort the process."""
    global _defer_depth, _pending
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
        if _defer_depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            if _interrupted is None:
                _interrupt(signum)


def _on_signal(signum: int, _frame) -> None:
    global _pending
    if _interrupted is not None:
        return  # already on the way out: a second Ctrl-C must not cut the cleanup short
    if _defer_depth:
        if _pending is None:
            stop_all()
        _pending = signum
        return
    _interrupt(signum)


def _interrupt(signum: int) -> None:
    global _interrupted
    _interrupted = signum
    stop_all()
    raise Interrupted(signum)


def interrupted() -> int | None:
    """The signal that interrupted this run, if one did (also when the `Interrupted` it raised was lost on
    its way: a C extension turning it into its own error, a `__del__` printing and dropping it)."""
    return _interrupted or None


def exiting() -> None:
    """npuconv is on its way out (its outcome already decided): from now on a signal is ignored, so it cannot
    turn a finished run into a traceback."""
    global _interrupted
    if _interrupted is None:
        _interrupted = 0


def install_signal_handlers() -> Callable[[], None]:
    """Make SIGINT, SIGTERM and SIGHUP stop every child and raise `Interrupted` in the main thread. A signal
    the parent shell set to ignore (a background job's SIGINT, nohup's SIGHUP) stays ignored. Returns a
    function that puts the previous handlers back. Does nothing outside the main thread."""
    global _interrupted, _pending
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _interrupted = _pending = None
    previous = {}
    for name in HANDLED:
        sig = getattr(signal, name, None)
        if sig is None or signal.getsignal(sig) == signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, _on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
