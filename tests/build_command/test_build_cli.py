"""The `npuconv build` command line: --list-jobs (a CI matrix), the --json shape, --until, --force STAGE
(the stage commands keep their bare --force), --variant, and the recipe's verify.targets."""

from __future__ import annotations

import json

from build_support import fake_cann, onnx_recipe, sha256, statuses, tiny_onnx

TWO_VARIANTS = [{"variant": "p3", "soc_version": "Ascend310P3"}, {"variant": "b1", "soc_version": "Ascend310B1"}]


def test_list_jobs_json_is_a_ci_matrix(run_cli, tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    plain = onnx_recipe(tmp_path, "plain", model)
    multi = onnx_recipe(tmp_path, "multi", model, om=TWO_VARIANTS)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [\n")
    res = run_cli("build", plain, multi, broken, "--list-jobs", "--json", cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.json() == {"include": [
        {"unit": "plain", "recipe": str(plain), "name": "plain", "variant": None, "args": str(plain)},
        {"unit": "multi_p3", "recipe": str(multi), "name": "multi", "variant": "p3", "args": f"{multi} --variant p3"},
        {"unit": "multi_b1", "recipe": str(multi), "name": "multi", "variant": "b1", "args": f"{multi} --variant b1"},
        {"unit": "broken", "recipe": str(broken), "name": "broken", "variant": None, "args": str(broken),
         "error": f"{broken}:2:1: invalid YAML: expected the node content, but found '<stream end>'"},
    ]}
    relative = run_cli("build", "multi.yaml", "--list-jobs", "--json", cwd=tmp_path).json()["include"]
    assert [job["args"] for job in relative] == ["multi.yaml --variant p3", "multi.yaml --variant b1"]
    human = run_cli("build", plain, multi, "--list-jobs", cwd=tmp_path)
    assert human.stdout.splitlines() == [f"plain\t{plain}", f"multi_p3\t{multi} --variant p3", f"multi_b1\t{multi} --variant b1"]
    assert not (tmp_path / "out").exists()  # listing builds nothing


def test_json_shape_until_variant_and_force(run_cli, tmp_path):
    recipe = onnx_recipe(tmp_path, "multi", tiny_onnx(tmp_path / "tiny.onnx"), om=TWO_VARIANTS)
    env = {**fake_cann(tmp_path / "cann"), "NPUCONV_CACHE": str(tmp_path / "cache")}
    res = run_cli("build", recipe, "--variant", "b1", "--until", "om", "--json", env=env)
    assert res.code == 0, res.stderr
    data = res.json()
    assert set(data) == {"passed", "recipes"} and len(data["recipes"]) == 1
    unit = data["recipes"][0]
    assert (unit["name"], unit["variant"], unit["unit"]) == ("multi", "b1", "multi_b1")
    assert [row["stage"] for row in unit["stages"]] == ["onnx", "om"]  # --until om: nothing after it
    for row in unit["stages"]:
        assert {"stage", "status", "seconds", "artifacts"} <= set(row) and row["status"] == "built"
        for artifact in row["artifacts"]:
            assert set(artifact) == {"role", "path", "sha256", "size"}
    assert json.loads((tmp_path / "out" / "multi" / "multi.manifest.json").read_text())["units"].keys() == {"b1"}

    forced = run_cli("build", recipe, "--variant", "b1", "--until", "om", "--force", "om", "--json", env=env)
    assert statuses(forced.json()["recipes"][0]) == {"onnx": "cached", "om[b1]": "built"}
    both = run_cli("build", recipe, "--until", "om", "--force", "onnx", "--force", "om", "--json", env=env)
    assert [statuses(u) for u in both.json()["recipes"]] == [{"onnx": "built", "om[p3]": "built"},
                                                            {"onnx": "cached", "om[b1]": "built"}]
    manifest = json.loads((tmp_path / "out" / "multi" / "multi.manifest.json").read_text())
    assert set(manifest["units"]) == {"p3", "b1"}  # merged: each variant's worker wrote its own entry

    # `build --force` takes a stage; the stage commands keep their bare --force flag
    bare = run_cli("build", recipe, "--force", "--json", env=env)
    assert bare.code == 2 and bare.json()["error"]["type"] == "UsageError"
    wrong = run_cli("build", recipe, "--force", "atc", "--json", env=env)
    assert wrong.code == 2 and "atc" in wrong.json()["error"]["message"]
    onnx = run_cli("onnx", recipe, "--force", "--json", env=env)
    assert onnx.code == 0 and onnx.json()["cached"] is False, onnx.stderr


def test_unknown_variant_and_bad_target_are_failed_load_rows(run_cli, tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    multi = onnx_recipe(tmp_path, "multi", model, om=TWO_VARIANTS)
    bad = onnx_recipe(tmp_path, "bad", model, verify={"targets": ["onnx:cpu", "gpu"]})
    res = run_cli("build", multi, bad, "--variant", "p3", "--until", "onnx", "--json",
                  env={"NPUCONV_CACHE": str(tmp_path / "cache")})
    assert res.code == 1
    units = {u["unit"]: u for u in res.json()["recipes"]}
    assert statuses(units["multi_p3"]) == {"onnx": "built"}
    load = units["bad"]["stages"]
    assert [(r["stage"], r["status"]) for r in load] == [("load", "failed")]
    assert "verify.targets.1" in load[0]["reason"]


def test_verify_targets_default_and_explicit(run_cli, tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    explicit = onnx_recipe(tmp_path, "explicit", model, verify={"targets": ["onnx:cpu", "onnx-file:tiny.onnx"]})
    res = run_cli("build", explicit, "--json", env={"NPUCONV_CACHE": str(tmp_path / "cache")})
    assert res.code == 0, res.stderr
    verify = [r for r in res.json()["recipes"][0]["stages"] if r["stage"] == "verify"]
    assert [r["target"] for r in verify] == ["onnx:cpu", f"onnx-file:{tmp_path / 'tiny.onnx'}"]  # relative to the recipe
    assert all(r["verdict"]["passed"] and r["status"] == "built" for r in verify)
    until = run_cli("build", explicit, "--until", "reference", "--json", env={"NPUCONV_CACHE": str(tmp_path / "cache")})
    assert statuses(until.json()["recipes"][0]) == {"onnx": "cached", "reference": "cached"}


def test_make_build_has_one_target_per_recipe():
    """`make -j build`: one npuconv build per recipe, each with its own JUnit file (dry run: nothing built)."""
    import shutil
    import subprocess

    import pytest
    from build_support import REPO

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    recipes = "RECIPES=recipes/ppocr_cls.yaml recipes/ppocrv4_rec.yaml"
    proc = subprocess.run(["make", "-n", "-o", "install", "-o", "models", "build", recipes, "BUNDLES=out/dist",
                           "BUILD_FLAGS=--until verify"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    commands = [" ".join(line.split()) for line in proc.stdout.replace("\\\n", " ").splitlines() if "npuconv build" in line]
    assert commands == [f".venv/bin/npuconv build recipes/{name}.yaml --bundle out/dist --junit build/junit/{name}.xml "
                        "--until verify" for name in ("ppocr_cls", "ppocrv4_rec")]


def test_bench_runs_where_the_recipe_asks_and_gates_on_its_slo(run_cli, tmp_path):
    """A recipe with `bench:` gets a bench row (the ONNX on ONNX Runtime CPU, measured as `npuconv bench`
    does, never cached); an SLO no machine meets fails it, with the numbers."""
    model = tiny_onnx(tmp_path / "tiny.onnx")
    fast = {"iterations": 5, "warmup": 1}
    met = onnx_recipe(tmp_path, "met", model, bench={**fast, "slo": {"p99_ms": 60000}})
    missed = onnx_recipe(tmp_path, "missed", model, bench={**fast, "slo": {"min_throughput": 1e12}})
    env = {"NPUCONV_CACHE": str(tmp_path / "cache")}
    res = run_cli("build", met, missed, "--json", env=env)
    assert res.code == 1, res.stderr
    units = {u["unit"]: u for u in res.json()["recipes"]}
    assert [r["label"] for r in units["met"]["stages"]] == ["onnx", "bench"]  # an ONNX source: no verify target
    bench = units["met"]["stages"][-1]
    assert bench["status"] == "built" and bench["verdict"]["passed"] is True
    assert list(bench["verdict"]["results"]) == ["onnx:cpu"] and bench["verdict"]["results"]["onnx:cpu"]["median_ms"] > 0
    report = tmp_path / "out" / "met" / "met.bench.json"
    assert bench["artifacts"] == [{"role": "report", "path": str(report), "sha256": sha256(report),
                                   "size": report.stat().st_size}]
    assert json.loads(report.read_text())["results"][0]["iterations"] == 5
    failed = units["missed"]["stages"][-1]
    assert failed["status"] == "failed" and "throughput" in failed["reason"] and "MISSES the SLO" in failed["reason"]
    again = run_cli("build", met, "--json", env=env).json()["recipes"][0]
    assert statuses(again) == {"onnx": "cached", "bench": "built"}  # measured again


def test_cli_stage_names_are_the_planners():
    """The CLI spells the stages without importing the planner (it pulls pydantic in); the two must agree."""
    from converter.commands import build as command
    from converter.pipeline import build_plan

    assert command.STAGES == build_plan.STAGES
    assert [m.value for m in command.ForceName] == ["all", *build_plan.STAGES]


def test_onnx_tables_when_parity_is_off_and_nothing_changed(run_cli, tmp_path):
    """`onnx.parity: false` on a graph no pass changes stores no comparison; the tables say so (they crashed)."""
    recipe = onnx_recipe(tmp_path, "plain", tiny_onnx(tmp_path / "tiny.onnx"))
    env = {"NPUCONV_CACHE": str(tmp_path / "cache")}
    human = run_cli("onnx", recipe, env=env)
    assert human.code == 0, human.stderr
    assert "parity: not checked" in human.stdout and "Traceback" not in human.stderr
    machine = run_cli("onnx", recipe, "--json", env=env)
    assert machine.code == 0 and machine.json()["parity"]["outputs"] is None
    assert "parity: not checked" in machine.stderr  # with --json the tables go to stderr
