"""A user's project as `npuconv export` sees it: dygraph modules written by the test beside a recipe,
and .pdparams files saved with paddle.save at test time."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

TINYNET = '''\
import paddle
from paddle import nn


class Net(nn.Layer):
    """Conv + BN + a linear head; two outputs, dynamic batch/height/width."""

    def __init__(self, hidden=8):
        super().__init__()
        self.conv = nn.Conv2D(3, hidden, 3, padding=1)
        self.bn = nn.BatchNorm2D(hidden)
        self.head = nn.Linear(hidden, 5)

    def forward(self, x):
        y = nn.functional.relu(self.bn(self.conv(x)))
        pooled = y.mean(axis=[2, 3])
        return nn.functional.softmax(self.head(pooled), axis=-1), pooled


def build_pair(hidden=8):
    return Net(hidden), {"labels": 5}


class Rows(nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        total = []
        for row in self.fc(x).tolist():
            total.append(sum(row))
        return paddle.to_tensor(total)


class Branches(nn.Layer):
    """Different code for dygraph and for static graphs: the saved model computes the other branch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if paddle.in_dynamic_mode():
            return self.fc(x)
        return self.fc(x) * 2.0
'''

BROKEN_DEP = '''\
"""A module whose own import fails before paddle is imported."""
import npuconv_test_no_such_dependency  # noqa: F401
'''

NET_INPUTS = [{"name": "x", "shape": [1, 3, 16, 24], "range": [-1.0, 1.0]}]
NET_SPEC = [{"name": "x", "shape": [-1, 3, None, None]}]


def write_project(folder: Path) -> Path:
    """The module files (no weights: those need paddle, see `save_weights`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tinynet.py").write_text(TINYNET)
    (folder / "brokendep.py").write_text(BROKEN_DEP)
    return folder


def write_recipe(folder: Path, name: str, export: dict, inputs: list | None = None, out: Path | None = None) -> Path:
    """A recipe with an `export:` section (JSON is YAML)."""
    data = {"name": name, "inputs": inputs or NET_INPUTS, "export": export}
    if out is not None:
        data["output_dir"] = str(out)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(json.dumps(data, indent=2)))
    return path


def load_module(path: Path, name: str):
    """Import a module file without putting its folder on sys.path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_weights(folder: Path) -> dict[str, Path]:
    """net.pdparams fits tinynet.Net(hidden=8); bad.pdparams lacks head.bias, adds extra.scale and has a
    head.weight of the wrong shape; rows.pdparams fits tinynet.Rows and tinynet.Branches."""
    import paddle

    tinynet = load_module(folder / "tinynet.py", "tinynet_weights")
    with paddle.utils.unique_name.guard():  # other tests' models keep their parameter names (linear_0...)
        paddle.seed(7)
        net = tinynet.Net(8)
        state = net.state_dict()
        # Non-trivial BN statistics, so that eval-mode BN is not the identity.
        state["bn._mean"] = paddle.uniform([8], min=-0.5, max=0.5)
        state["bn._variance"] = paddle.uniform([8], min=0.5, max=1.5)
        paddle.save(state, str(folder / "net.pdparams"))
        bad = dict(state)
        del bad["head.bias"]
        bad["extra.scale"] = paddle.ones([3])
        bad["head.weight"] = paddle.zeros([16, 5])
        paddle.save(bad, str(folder / "bad.pdparams"))
        paddle.save(tinynet.Rows().state_dict(), str(folder / "rows.pdparams"))
    return {"net": folder / "net.pdparams", "bad": folder / "bad.pdparams", "rows": folder / "rows.pdparams"}
