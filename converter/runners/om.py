"""An OM file on an Ascend NPU through ais_bench's `InferSession` (the documented Python API of
msit benchmark), else pyACL (`import acl`, see runners/acl.py). The runtime is imported only when the
runner is checked or activated; where neither is importable the runner fails with one `ToolNotFound`
line. OM output names are atc's, not ONNX's: verify pairs them with the reference by position."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from converter.errors import InputError, StageFailed, ToolNotFound
from converter.runners.base import Runner, TensorInfo

# shared by verify, bench and build: names what each can do without an NPU
INSTALL_HINT = ("install the CANN toolkit and the msit benchmark wheels (aclruntime, ais_bench) on the machine "
                "with the NPU and source set_env.sh; on this machine, `verify --target emulate:fp16` predicts "
                "the fp16 parity and `bench --backend onnx` times the ONNX")


def _session_class() -> type:
    """ais_bench's InferSession, else the pyACL session; ToolNotFound when neither imports."""
    try:
        from ais_bench.infer.interface import InferSession

        return InferSession
    except ImportError as exc:
        missing = str(exc)
    try:
        import acl  # noqa: F401
    except ImportError:
        raise ToolNotFound(f"the Ascend runtime is not available here: neither ais_bench nor pyACL (acl) "
                           f"can be imported ({missing})", hint=INSTALL_HINT) from None
    from converter.runners.acl import AclSession

    return AclSession


class OmRunner(Runner):
    """`InferSession(device_id, om_path)`; `infer` passes the inputs in the model's order."""

    def __init__(self, om_path: Path, device_id: int = 0, output_names: list[str] | None = None) -> None:
        self.om_path = Path(om_path)
        self.device_id = device_id
        # atc renames outputs; the ONNX graph's names, in order, when a caller keys on them (the host loop)
        self.onnx_output_names = list(output_names) if output_names else None
        self.name = "om"
        self._session = None

    def check(self) -> type:
        """The session class to use (ais_bench's InferSession, else pyACL's); InputError without the OM
        file, ToolNotFound without an Ascend runtime."""
        session_class = _session_class()
        if not self.om_path.is_file():
            raise InputError(f"OM file not found: {self.om_path}",
                             hint="build it with `npuconv om RECIPE`, or pass --om FILE")
        return session_class

    def activate(self) -> None:
        session_class = self.check()
        try:
            self._session = session_class(self.device_id, str(self.om_path))
        except StageFailed:
            raise
        except Exception as exc:  # the runtime raises RuntimeError or its own types
            raise StageFailed(f"the Ascend runtime cannot load {self.om_path} on device {self.device_id}: {exc}",
                              hint="check `npu-smi info`, the soc_version the OM was built for, and ASCEND_* env") from None

    def deactivate(self) -> None:
        if self._session is not None:
            free = getattr(self._session, "free_resource", None)
            if free is not None:
                free()
        self._session = None

    def input_infos(self) -> list[TensorInfo]:
        return [TensorInfo(i.name, tuple(i.shape), str(getattr(i, "datatype", ""))) for i in self._session.get_inputs()]

    def output_names(self) -> list[str]:
        return self.onnx_output_names or [o.name for o in self._session.get_outputs()]

    def _match(self, infos: list[TensorInfo], feed: dict[str, np.ndarray]) -> list[tuple[TensorInfo, np.ndarray]]:
        """By name where atc kept the ONNX names, else in order."""
        if len(feed) != len(infos):
            raise InputError(f"the OM has {len(infos)} input(s), the feed {len(feed)}",
                             hint="the recipe's inputs must match the ONNX the OM was built from")
        values = list(feed.values())
        return [(i, feed[i.name] if i.name in feed else values[k]) for k, i in enumerate(infos)]

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = [np.ascontiguousarray(a) for _, a in self._match(self.input_infos(), feed)]
        outputs = self._session.infer(arrays, mode="static")
        return {name: np.asarray(value) for name, value in zip(self.output_names(), outputs)}


def om_files(om_path: Path, om_card) -> dict[str, Path]:
    """The OM file of each graph its card names: `<stem>.om`, or `<stem>.encoder.om` and `<stem>.step.om`
    of a split decoder (beside the card; `om_path` may name `<stem>.om` for those too)."""
    graphs = list((om_card or {}).get("graphs") or ["model"])
    if graphs == ["model"]:
        return {"model": Path(om_path)}
    stem = om_card["stem"]
    return {role: Path(om_path).with_name(f"{stem}.{role}.om") for role in graphs}


def om_runner(om_path: Path, om_card) -> Runner:
    """The OM as its card describes it: one OM, or the encoder and step OMs of a split decoder driven by
    the host loop."""
    files = om_files(om_path, om_card)
    if list(files) == ["model"]:
        return OmRunner(files["model"])
    from converter.runners.hostloop import HostLoopRunner

    names = om_card.get("graph_outputs") or {}
    return HostLoopRunner(files, om_card["host_loop"],
                          make_runner=lambda role, path: OmRunner(path, output_names=names.get(role)))
