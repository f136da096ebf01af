"""The CLI contract on the failure paths, as a user meets them (a subprocess each): exactly one JSON object
on stdout with --json, exit 2 with one `error:` and one `hint:` line for bad input (an OS error on a path
the user gave included), exit 3 with the traceback and a line asking to report it for a bug."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from proc_support import BUG_LINE, REPO, onnx_recipe, partial_files


def one_json_error(res, code: int, type_: str) -> dict:
    assert res.code == code, res.stderr
    data = json.loads(res.stdout)  # exactly one JSON document, nothing else on stdout
    assert data["passed"] is False and data["error"]["type"] == type_, data
    assert set(data["error"]) >= {"type", "message", "hint"}
    return data["error"]


def error_and_hint(res) -> tuple[str, str]:
    """The one `error:` line and the one `hint:` line; no traceback anywhere."""
    lines = res.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    hints = [ln for ln in lines if ln.startswith("hint: ")]
    assert len(errors) == 1 and len(hints) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return errors[0], hints[0]


def test_usage_error_json(run_cli):
    res = run_cli("onnx", "--no-such-flag", "--json")
    error = one_json_error(res, 2, "UsageError")
    assert "--no-such-flag" in error["message"] and "--help" in error["hint"]
    assert "No such option" in res.stderr and "Traceback" not in res.stderr


def test_missing_argument_json(run_cli):
    error = one_json_error(run_cli("verify", "--json"), 2, "UsageError")
    assert "recipe" in error["message"].lower()


def test_recipe_not_found_json(run_cli, tmp_path):
    res = run_cli("onnx", tmp_path / "nowhere.yaml", "--json")
    error = one_json_error(res, 2, "RecipeError")
    assert str(tmp_path / "nowhere.yaml") in error["message"]
    line, _ = error_and_hint(res)
    assert str(tmp_path / "nowhere.yaml") in line


@pytest.mark.parametrize("command", ["onnx", "lint"])
def test_binary_file_as_recipe_is_bad_input(run_cli, tmp_path, command):
    """A bundle handed to a command that takes only recipes: gzip bytes, not YAML (it crashed with exit 3)."""
    import gzip

    archive = tmp_path / "rec.tar.gz"
    archive.write_bytes(gzip.compress(b"not a recipe"))
    res = run_cli(command, archive, "--json")
    error = one_json_error(res, 2, "RecipeError")
    assert error["message"] == f"{archive}: not a UTF-8 text file (byte 1), so not a YAML recipe"
    assert "bundle" in error["hint"] and "Traceback" not in res.stderr


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_directory_as_recipe(run_cli, tmp_path, json_flag):
    (tmp_path / "recipes").mkdir()
    res = run_cli("onnx", tmp_path / "recipes", *json_flag)
    assert res.code == 2
    line, hint = error_and_hint(res)
    assert str(tmp_path / "recipes") in line and "Is a directory" in line
    assert "YAML recipe file" in hint
    if json_flag:
        assert "Is a directory" in one_json_error(res, 2, "RecipeError")["message"]
    else:
        assert res.stdout == ""


@pytest.mark.parametrize("where", ["file-in-the-way", "output-is-a-file", "output-file-is-a-directory"])
def test_unusable_output_dir_is_bad_input(run_cli, tmp_path, where):
    recipe = onnx_recipe(tmp_path)
    (tmp_path / "afile").write_text("not a directory")
    out = {"file-in-the-way": tmp_path / "afile" / "out", "output-is-a-file": tmp_path / "afile",
           "output-file-is-a-directory": tmp_path / "out2"}[where]
    if where == "output-file-is-a-directory":
        (out / "tiny.onnx").mkdir(parents=True)  # where the ONNX would go
    res = run_cli("onnx", recipe, "-o", out, "--json")
    error = one_json_error(res, 2, "InputError")
    line, hint = error_and_hint(res)
    expected = {"file-in-the-way": (str(out), "Not a directory"), "output-is-a-file": (str(out), "File exists"),
                "output-file-is-a-directory": (str(out / "tiny.onnx"), "Is a directory")}[where]
    for text in expected:
        assert text in line and text in error["message"]
    if where != "output-file-is-a-directory":
        assert f"the file {tmp_path / 'afile'}" in hint
    assert partial_files(tmp_path) == []
    assert (tmp_path / "afile").read_text() == "not a directory"


def test_cache_dir_that_is_a_file(run_cli, tmp_path):
    recipe = onnx_recipe(tmp_path)
    cache = tmp_path / "cache-file"
    cache.write_text("")
    res = run_cli("onnx", recipe, env={"NPUCONV_CACHE": str(cache)})
    assert res.code == 2 and res.stdout == ""
    line, hint = error_and_hint(res)
    assert str(cache) in line and "Not a directory" in line
    assert "NPUCONV_CACHE" in hint
    assert not (tmp_path / "out" / "tiny.onnx").exists()


# A bug is simulated the way it would happen: a function the command calls raises. Patched in a `python -c`
# that then runs the real entry point, so the product code holds no test hook.
RAISE = """
import errno, sys
import converter.commands.common as common
def broken(*args, **kwargs):
    raise {exc}
common.load = broken
from converter.cli import main
main()
"""


def _run_broken(exc: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RAISE.format(exc=exc), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("exc", ["RuntimeError('boom-7f3a')",
                                 "FileNotFoundError(errno.ENOENT, 'No such file', '/x/boom-7f3a')"])
def test_internal_error_exit_3(tmp_path, exc):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\n")
    text = _run_broken(exc, "onnx", recipe)
    assert text.returncode == 3 and text.stdout == ""
    assert "Traceback (most recent call last)" in text.stderr and "boom-7f3a" in text.stderr
    assert text.stderr.strip().splitlines()[-1] == BUG_LINE

    js = _run_broken(exc, "onnx", recipe, "--json")
    assert js.returncode == 3
    data = json.loads(js.stdout)
    assert data["passed"] is False and data["error"]["type"] == "InternalError"
    assert "boom-7f3a" in data["error"]["message"] and "report" in data["error"]["hint"]
    assert "Traceback (most recent call last)" in js.stderr


def test_os_error_on_a_user_path_is_bad_input(tmp_path):
    # Tests run as root, where permissions cannot be denied for real.
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\n")
    proc = _run_broken("PermissionError(errno.EACCES, 'Permission denied', '/srv/models/boom-7f3a')",
                       "onnx", recipe, "--json")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["error"]["type"] == "InputError"
    assert data["error"]["message"] == "cannot use /srv/models/boom-7f3a: Permission denied"
    assert "Traceback" not in proc.stderr
    assert "error: cannot use /srv/models/boom-7f3a: Permission denied" in proc.stderr
