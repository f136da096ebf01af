"""`run_stage`: the one function that runs any stage. It computes the content key, takes a per-key lock
(a second writer waits, it never fails or corrupts), checks a cache hit's integrity (every file against
its recorded sha256; a corrupt entry is rebuilt and said so, never published), builds in scratch,
publishes the entry atomically with the umask's permissions, and copies the files to their published
places (atomically too)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from converter.artifacts import (
    RECORD,
    Artifact,
    apply_umask,
    content_key,
    copy_atomic,
    file_digest,
    write_json_atomic,
)
from converter.stage import Progress, StageRun, quiet

Warn = Callable[[str], None]


def cache_root() -> Path:
    """NPUCONV_CACHE, else the user cache directory."""
    env = os.environ.get("NPUCONV_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("npuconv"))


_CODE: dict[tuple[str, ...], str] = {}


def code_digest(modules: tuple[str, ...]) -> str:
    """sha256 over the source files of `modules` (a package: every .py below it), memoised per process."""
    import hashlib
    import importlib.util

    if modules not in _CODE:
        h = hashlib.sha256()
        for name in modules:
            spec = importlib.util.find_spec(name)
            origin = Path(spec.origin)
            files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
            for path in files:
                h.update(path.name.encode())
                h.update(file_digest(path).encode())
        _CODE[modules] = h.hexdigest()
    return _CODE[modules]


def stage_key(run: StageRun, upstream: Mapping[str, Artifact]) -> str:
    """sha256 of the stage's name and version, its section, the upstream artifacts' keys and file digests,
    and whatever else the stage declares (tool versions, source digests)."""
    stage = run.stage
    return content_key({
        "stage": stage.name,
        "version": stage.version,
        "section": run.key_section(),
        "upstream": {name: {"key": a.key, "digests": dict(a.digests)} for name, a in sorted(upstream.items())},
        "extra": dict(stage.key_payload(run.section, upstream)),
        "code": code_digest((type(stage).__module__, *stage.code)),
    })


def _lock(path: Path):
    from filelock import FileLock

    return FileLock(str(path))


def _hit(entry: Path, key: str, warn: Warn) -> Artifact | None:
    """The stored artifact, or None (absent; or corrupt: removed, said in one line)."""
    if not (entry / RECORD).is_file():
        return None
    try:
        artifact = Artifact.load(entry)
        bad = artifact.corrupt_files() if artifact.key == key else ["record"]
    except (OSError, ValueError, KeyError) as exc:
        bad = [f"record ({exc})"]
    if not bad:
        return artifact
    warn(f"cache entry {entry} is damaged ({', '.join(bad)} does not match its recorded sha256): rebuilding it")
    _discard(entry)
    return None


def _discard(entry: Path) -> None:
    """Move an entry out of the way first (a rename is atomic), then delete it."""
    if not entry.exists():
        return
    trash = Path(tempfile.mkdtemp(prefix=".old-", dir=entry.parent))
    os.replace(entry, trash / "entry")
    shutil.rmtree(trash, ignore_errors=True)


def run_stage(run: StageRun, upstream: Mapping[str, Artifact], *, force: bool = False,
              progress: Progress = quiet, warn: Warn = quiet) -> Artifact:
    """Run one planned stage (or reuse its cached artifact) and publish its files. `upstream` maps the
    stage names in `run.stage.reads` to their artifacts."""
    stage = run.stage
    missing = [name for name in stage.reads if name in run.upstream and name not in upstream]
    if missing:
        raise RuntimeError(f"{run.label}: upstream artifacts missing: {missing}")
    stage.check(run.section, upstream)
    key = stage_key(run, upstream)
    base = cache_root() / stage.name
    (base / ".scratch").mkdir(parents=True, exist_ok=True)  # an unusable cache is bad input (cli: path_error)
    entry = base / key
    lock = _lock(base / f"{key}.lock")
    try:
        lock.acquire(timeout=0)
    except Exception:  # filelock.Timeout: another process builds the same key; wait for it
        progress(f"waiting for another npuconv building the same {stage.name} output")
        lock.acquire()
    try:
        artifact = None if force else _hit(entry, key, warn)
        if artifact is None:
            artifact = _build(run, upstream, key, entry, progress)
    finally:
        lock.release()
    return _publish(run, artifact)


def _build(run: StageRun, upstream: Mapping[str, Artifact], key: str, entry: Path, progress: Progress) -> Artifact:
    stage = run.stage
    scratch = Path(tempfile.mkdtemp(prefix=f"{key[:12]}.", dir=entry.parent / ".scratch"))
    try:
        started = time.perf_counter()
        out = stage.run(run.section, upstream, scratch, progress)
        seconds = time.perf_counter() - started
        digests = {}
        for role, name in out.files.items():
            path = scratch / name
            if not path.is_file():
                raise RuntimeError(f"stage {stage.name} declared file {name!r} ({role}) but did not write it")
            digests[role] = file_digest(path)
        card = {**out.card, "seconds": round(seconds, 3)}
        artifact = Artifact(stage.name, key, entry, dict(out.files), digests, card, cached=False, seconds=seconds)
        write_json_atomic(scratch / RECORD, artifact.record())
        apply_umask(scratch)
        _discard(entry)
        os.replace(scratch, entry)
        return artifact
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _publish(run: StageRun, artifact: Artifact) -> Artifact:
    """Copy the artifact's files to their published places and write the card beside them."""
    if run.out_dir is None:
        return artifact
    published = {}
    for role in artifact.files:
        name = run.stage.published_name(role, run.stem)
        if name is None:
            continue
        dest = run.out_dir / name
        _write(dest, lambda tmp_dest, src=artifact.path(role): copy_atomic(src, tmp_dest))
        published[role] = str(dest)
    card_path = run.card_path()
    if card_path is not None:
        record = {**artifact.record(), "published": dict(published)}
        _write(card_path, lambda dest: write_json_atomic(dest, record))
        published["card"] = str(card_path)
    return dataclasses.replace(artifact, published=published)


def _write(dest: Path, write: Callable[[Path], None]) -> None:
    """Write one published file (an OSError on the user's -o reaches the CLI as bad input)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    write(dest)
