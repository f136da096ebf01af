"""npuconv doctor: tool versions, atc/CANN found or not, the SoC from npu-smi, known-bad versions."""

from __future__ import annotations

import os
import shutil
import textwrap

from om_support import FAKE_ATC_DIR

NPU_SMI_310P = textwrap.dedent("""\
    +--------------------------------------------------------------------------------------------------------+
    | npu-smi 23.0.rc3                                 Version: 23.0.rc3                                     |
    +-------------------------------+-----------------+------------------------------------------------------+
    | NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
    | Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
    +===============================+=================+======================================================+
    | 0       310P3                 | OK              | NA           45                0     / 0             |
    | 0       0                     | 0000:01:00.0    | 0            1520 / 21527                            |
    +===============================+=================+======================================================+
    | 1       310P3                 | OK              | NA           44                0     / 0             |
    | 0       1                     | 0000:02:00.0    | 0            1519 / 21527                            |
    +===============================+=================+======================================================+
""")


def _fake_tool(directory, name, text):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "out.txt").write_text(text)
    tool = directory / name
    tool.write_text(f"#!/bin/sh\ncat '{directory / 'out.txt'}'\n")
    tool.chmod(0o755)
    return tool


def test_doctor_without_ascend(cli):
    res = cli("doctor", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True
    assert data["known_bad"] == []
    assert data["tools"]["onnx"] == "1.23.2"
    assert data["atc"] == {"found": False, "path": None, "home": None, "found_via": None, "cann_version": None}
    assert data["npu"] == {"npu_smi": None, "chips": [], "soc_version": None, "error": None}
    human = cli("doctor")
    assert "atc: not installed (npuconv om --dry-run / --emit-script still work)" in human.stdout


def test_doctor_finds_cann_and_npu(cli, tmp_path, monkeypatch):
    home = tmp_path / "ascend-toolkit" / "latest"
    (home / "bin").mkdir(parents=True)
    shutil.copy(FAKE_ATC_DIR / "atc", home / "bin" / "atc")
    (home / "x86_64-linux").mkdir()
    (home / "x86_64-linux" / "ascend_toolkit_install.info").write_text("package_name=Ascend-cann-toolkit\nversion=8.0.RC2\n")
    monkeypatch.setenv("ASCEND_HOME_PATH", str(home))
    smi = _fake_tool(tmp_path / "smi", "npu-smi", NPU_SMI_310P)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    data = cli("doctor", "--json").json()
    assert data["atc"] == {"found": True, "path": str(home / "bin" / "atc"), "home": str(home),
                           "found_via": "ASCEND_HOME_PATH", "cann_version": "8.0.RC2"}
    assert data["npu"]["soc_version"] == "Ascend310P3"
    assert [(c["id"], c["name"], c["health"], c["known"]) for c in data["npu"]["chips"]] == [
        (0, "310P3", "OK", True), (1, "310P3", "OK", True)]
    human = cli("doctor")
    assert "use om.soc_version: Ascend310P3" in human.stdout


def test_doctor_known_bad_versions_exit_1(cli, monkeypatch):
    import converter.versions as versions

    real = versions.tool_versions
    monkeypatch.setattr(versions, "tool_versions", lambda names=versions.TOOLS: {**real(names), "paddle2onnx": "2.1.0"})
    res = cli("doctor", "--json")
    assert res.code == 1
    data = res.json()
    assert data["passed"] is False
    assert data["known_bad"] == ["paddle2onnx 2.1.x writes ONNX that ONNX Runtime rejects for PP-OCRv4 rec/cls "
                                 "('All inputs to Concat must have same rank')"]
    assert data["fix"].startswith("pip install paddlepaddle==3.2.2 paddle2onnx==2.0.1")
