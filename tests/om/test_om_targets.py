"""Target facts checked before atc: SoC names (typos refused with the closest real chips, newer chips let
through by om.allow_unknown_soc), CANN versions (nearest lower known release, older ones refused), and
the recipe's CANN against the installed one (`om` warns, `doctor --recipe` fails)."""

from __future__ import annotations

import shutil

import pytest
from om_support import FAKE_ATC_DIR, atc_calls

BASE = {"soc_version": "Ascend310P3", "precision_mode_v2": "origin"}
# The 26 chip names of converter/ascend.py's table, written out by hand from the CANN sources it cites.
KNOWN_SOCS = (
    "Ascend310, Ascend310P1, Ascend310P3, Ascend310P5, Ascend310P7, Ascend310B1, Ascend310B2, Ascend310B3, "
    "Ascend310B4, Ascend910A, Ascend910B, Ascend910ProA, Ascend910ProB, Ascend910PremiumA, Ascend910B1, "
    "Ascend910B2, Ascend910B2C, Ascend910B3, Ascend910B4, Ascend910B4-1, Ascend910_9391, Ascend910_9392, "
    "Ascend910_9381, Ascend910_9382, Ascend910_9372, Ascend910_9362"
)


def _error(res) -> str:
    assert res.code == 2, res.stderr
    error = res.json()["error"]
    assert error["type"] == "RecipeError"
    return error["message"]


@pytest.mark.parametrize("mode", [["--dry-run"], ["--emit-script", "build.sh"], []])
def test_soc_typo_refused_before_atc_with_closest_names(mode, cli, make_recipe, fake_atc, tmp_path):
    # `Ascend310P` lacks the chip suffix `npu-smi info` prints (310P1/310P3/...): atc would refuse it
    res = cli("om", make_recipe({**BASE, "soc_version": "Ascend310P"}), "--json",
              *[str(tmp_path / a) if a.endswith(".sh") else a for a in mode])
    assert _error(res) == ("om rule soc-version: om.soc_version 'Ascend310P' is not a SoC npuconv knows; "
                           "closest known: Ascend310P1, Ascend310P3, Ascend310P5")
    assert "om.allow_unknown_soc: true" in res.json()["error"]["hint"]
    assert atc_calls(fake_atc) == []
    assert not (tmp_path / "build.sh").exists()


def test_soc_far_from_every_chip_lists_the_known_ones(cli, make_recipe):
    res = cli("om", make_recipe({**BASE, "soc_version": "Kirin9000"}), "--dry-run", "--json")
    assert _error(res) == f"om rule soc-version: om.soc_version 'Kirin9000' is not a SoC npuconv knows; known: {KNOWN_SOCS}"


def test_soc_case_typo_suggests_the_real_spelling(cli, make_recipe):
    res = cli("om", make_recipe({**BASE, "soc_version": "ascend910b2"}), "--dry-run", "--json")
    message = _error(res)
    assert message.startswith("om rule soc-version: om.soc_version 'ascend910b2' is not a SoC npuconv knows; closest known: ")
    assert "Ascend910B2" in message.split("closest known: ")[1].split(", ")


def test_allow_unknown_soc_lets_a_newer_chip_through_with_a_warning(cli, make_recipe):
    res = cli("om", make_recipe({**BASE, "soc_version": "Ascend310P9", "allow_unknown_soc": True}), "--dry-run", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert "--soc_version=Ascend310P9" in data["argv"]
    assert data["warnings"] == [
        "om.soc_version 'Ascend310P9' is not in npuconv's SoC table (let through by om.allow_unknown_soc); "
        "it looks like an Ascend 310P chip; atc will refuse it if your CANN does not know the chip"]
    assert not [a for a in data["argv"] if a.startswith("--allow")]  # a recipe key, not an atc option


def test_allow_unknown_soc_keeps_the_family_capabilities(cli, make_recipe):
    # a 310P-family chip has no bfloat16, known to the table or not; a 950-family chip has HiFloat8
    res = cli("om", make_recipe({"soc_version": "Ascend310P9", "allow_unknown_soc": True,
                                 "precision_mode_v2": "mixed_bfloat16"}), "--dry-run", "--json")
    assert _error(res).startswith("om rule soc-precision: mixed_bfloat16 needs bfloat16")
    res = cli("om", make_recipe({"soc_version": "Ascend950PR", "allow_unknown_soc": True,
                                 "precision_mode_v2": "cube_hif8"}), "--dry-run", "--json")
    assert res.code == 0, res.stderr


def test_lint_refuses_an_unknown_soc_too(cli, make_recipe):
    res = cli("lint", make_recipe({**BASE, "soc_version": "Ascend310P"}), "--json")
    assert _error(res).startswith("om rule soc-version:")


# ---- CANN versions ------------------------------------------------------------------------------------

def test_cann_version_between_releases_uses_the_nearest_lower_one(cli, make_recipe, fake_atc):
    # 6.3.RC1 is not in the table: it is checked as 6.0 (opset 9..13), so the opset-14 tiny ONNX is refused
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode": "force_fp32", "cann_version": "6.3.RC1"})
    res = cli("om", recipe, "--json")
    assert _error(res) == ("om rule opset-range: the ONNX has ai.onnx opset 14, CANN 6.0 atc parses opset 9..13 "
                           "(om.cann_version 6.3.RC1 checked as CANN 6.0)")
    assert atc_calls(fake_atc) == []


@pytest.mark.parametrize("version, release, opsets", [("7.5", "7.0", "9..18"), ("9.9", "8.5", "9..18")])
def test_cann_version_not_in_table_warns_naming_the_release_used(version, release, opsets, cli, make_recipe):
    res = cli("om", make_recipe({**BASE, "cann_version": version}), "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["warnings"] == [
        f"om.cann_version '{version}' is not in npuconv's table; using the nearest lower known release, "
        f"CANN {release} (opset {opsets})"]


def test_cann_version_older_than_every_release_is_refused(cli, make_recipe, fake_atc):
    res = cli("om", make_recipe({"soc_version": "Ascend310P3", "precision_mode": "force_fp32",
                                 "cann_version": "3.3.0"}), "--dry-run", "--json")
    assert _error(res) == ("om rule cann-version: om.cann_version '3.3.0' is older than every CANN release npuconv "
                           "knows (5.0, 5.1, 6.0, 7.0, 8.0, 8.1, 8.2, 8.3, 8.5)")
    assert atc_calls(fake_atc) == []


def test_lint_plain_onnx_cann_versions(cli, tiny_onnx):
    data = cli("lint", tiny_onnx, "--cann-version", "6.3.RC1", "--json").json()
    assert data["opset_range"] == [9, 13]
    assert [(f["rule"], f["severity"], f["message"]) for f in data["findings"] if f["rule"].startswith(("cann", "opset"))] == [
        ("opset-range", "block", "ai.onnx opset 14 is outside 9..13, what CANN 6.0 atc parses"),
        ("cann-version", "warn", "CANN 6.3.RC1 is not in npuconv's table; the opset is checked against the nearest "
                                 "lower known release, CANN 6.0")]
    old = cli("lint", tiny_onnx, "--cann-version", "4.1", "--json")
    assert old.code == 2
    assert old.json()["error"]["message"] == (
        "CANN 4.1 is older than every CANN release npuconv knows (5.0, 5.1, 6.0, 7.0, 8.0, 8.1, 8.2, 8.3, 8.5)")


# ---- the recipe's CANN against the installed one ------------------------------------------------------

@pytest.fixture
def installed_cann(tmp_path, monkeypatch):
    """A CANN 8.0.RC2 toolkit home with the recording fake atc in it, found through ASCEND_HOME_PATH."""
    home = tmp_path / "Ascend" / "ascend-toolkit" / "latest"
    (home / "bin").mkdir(parents=True)
    shutil.copy(FAKE_ATC_DIR / "atc", home / "bin" / "atc")
    (home / "x86_64-linux").mkdir()
    (home / "x86_64-linux" / "ascend_toolkit_install.info").write_text(
        "package_name=Ascend-cann-toolkit\nversion=8.0.RC2\n")
    monkeypatch.setenv("ASCEND_HOME_PATH", str(home))
    monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "om-cache"))
    monkeypatch.setenv("FAKE_ATC_RECORD", str(tmp_path / "record.jsonl"))
    return tmp_path / "record.jsonl"


MISMATCH_7_0 = ("om.cann_version is 7.0 but the installed CANN is 8.0.RC2: the opset range and option checks were "
                "made for the recipe's version, atc here is another one")


@pytest.mark.parametrize("wanted, warned", [("8.0", False), ("8.0.RC2", False), ("8.0.rc2", False),
                                            ("7.0", True), ("8.0.RC3", True), ("8.0.RC2.1", True)])
def test_om_warns_when_the_installed_cann_differs(wanted, warned, cli, make_recipe, installed_cann):
    res = cli("om", make_recipe({**BASE, "cann_version": wanted}), "--json")
    assert res.code == 0, res.stderr
    warnings = res.json()["warnings"]
    mismatch = [w for w in warnings if "installed CANN" in w]
    assert bool(mismatch) is warned, warnings
    if wanted == "7.0":
        assert mismatch == [MISMATCH_7_0]
        assert "om.cann_version is 7.0 but the installed CANN is 8.0.RC2" in " ".join(res.stderr.split())
    assert len(atc_calls(installed_cann)) == 1  # a warning, atc still runs


def test_om_dry_run_compares_too_but_emit_script_does_not(cli, make_recipe, installed_cann, tmp_path):
    recipe = make_recipe({**BASE, "cann_version": "7.0"})
    assert MISMATCH_7_0 in cli("om", recipe, "--dry-run", "--json").json()["warnings"]
    # the script runs on a build server: this machine's CANN says nothing about that one
    assert cli("om", recipe, "--emit-script", tmp_path / "om.sh", "--json").json()["warnings"] == []


def test_doctor_recipe_fails_when_the_installed_cann_differs(cli, make_recipe, installed_cann):
    recipe = make_recipe([{**BASE, "variant": "new", "cann_version": "8.0"},
                          {**BASE, "variant": "old", "cann_version": "7.0"}])
    ok = cli("doctor", "--recipe", recipe, "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json()["recipe"] == {
        "recipe": f"{recipe} (variant new)", "cann_version": "8.0", "installed": "8.0.RC2", "match": True,
        "message": "the recipe targets CANN 8.0, the installed CANN is 8.0.RC2: match"}
    bad = cli("doctor", "--recipe", recipe, "--variant", "old", "--json")
    assert bad.code == 1
    data = bad.json()
    assert data["passed"] is False
    assert (data["recipe"]["cann_version"], data["recipe"]["installed"], data["recipe"]["match"]) == ("7.0", "8.0.RC2", False)
    assert data["recipe"]["message"].startswith("the recipe targets CANN 7.0, the installed CANN is 8.0.RC2; ")
    human = cli("doctor", "--recipe", recipe, "--variant", "old")
    assert human.code == 1
    assert "the recipe targets CANN 7.0, the installed CANN is 8.0.RC2" in " ".join(human.stdout.split())


def test_doctor_recipe_without_a_comparison_passes(cli, make_recipe):
    # no atc here: nothing to compare, not a failure (dry-run / emit-script still work)
    recipe = make_recipe({**BASE, "cann_version": "7.0"})
    res = cli("doctor", "--recipe", recipe, "--json")
    assert res.code == 0, res.stderr
    assert res.json()["recipe"]["match"] is None
    assert res.json()["recipe"]["message"] == "the recipe targets CANN 7.0; atc is not installed here, so nothing to compare"
    unknown = cli("doctor", "--recipe", recipe, "--variant", "x", "--json")
    assert unknown.code == 2 and unknown.json()["error"]["message"] == (
        "--variant x: the recipe has no om variant of that name")
