"""Rewrites of a loop body (standalone, after index analysis) toward a static single step:
- a ScatterElements/ScatterND that writes one whole row of a loop state at the step counter becomes
  `Where(Equal(arange, step), row, buffer)` (exact for every step the loop can run);
- step-only tensors that are the same at every step become constants;
- states are sorted into roles: `write` (a buffer only written: the step returns the row instead),
  `recurrent` (read and updated, kept as step input/output), `last` (never read: only its final value
  matters), `append` (Concat-grown, decided earlier)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper, numpy_helper

from converter.passes import graph_edit as ge
from converter.passes import graphs
from converter.passes.loop_body import LoopBody, SplitRefused, describe
from converter.passes.loop_index import IndexTables, refuse_data_write


@dataclass
class RowWrite:
    state: str     # body input of the buffer
    result: str    # the written buffer (the scatter's output name, now a Where)
    row: str       # the row written at this step: the buffer's shape with `axis` of size 1
    axis: int
    offset: int    # the row written at step k is k + offset
    where: str     # the Where node's output (== result)


def rewrite_scatters(body: LoopBody, tables: IndexTables, names: graphs.Names) -> list[RowWrite]:
    """Replace every Scatter* of the body by a masked select; refuse writes that are not one row per step
    at the step counter."""
    g = body.model.graph
    states = {s.input: s for s in body.states}
    made = ge.producers(g.node)
    writes, nodes = [], []
    for node in g.node:
        if node.op_type not in ("ScatterElements", "ScatterND", "Scatter"):
            nodes.append(node)
            continue
        if (ge.attr(node, "reduction", b"none") or b"none") not in (b"none", "none"):
            raise SplitRefused(f"{describe(node)} accumulates into its target (reduction); only plain writes are split")
        data, indices, updates = node.input[:3]
        while data in made and made[data].op_type == "Identity":
            data = made[data].input[0]
        if indices not in tables.values:
            if indices in tables.seeded or _constant(indices, g):
                raise SplitRefused(f"{describe(node)} writes the same position at every step; only a write at the "
                                   "step counter is split")
            raise refuse_data_write(node)
        if data not in states:
            raise SplitRefused(f"{describe(node)} writes into '{data}', which is not a loop-carried state")
        shape = states[data].shape
        axis, offset, row_shape = _row_write(node, tables.values[indices], shape)
        row = updates
        if node.op_type == "ScatterND":
            target = names.fresh(node.output[0] + ".row_shape")
            row = names.fresh(node.output[0] + ".row")
            g.initializer.append(numpy_helper.from_array(np.array(row_shape, np.int64), target))
            nodes.append(helper.make_node("Reshape", [updates, target], [row]))
        positions = [1] * len(shape)
        positions[axis] = shape[axis]
        arange = names.fresh(node.output[0] + ".positions")
        g.initializer.append(numpy_helper.from_array(
            (np.arange(shape[axis], dtype=np.int64) - offset).reshape(positions), arange))
        mask = names.fresh(node.output[0] + ".mask")
        nodes.append(helper.make_node("Equal", [arange, body.iter], [mask]))
        nodes.append(helper.make_node("Where", [mask, row, data], [node.output[0]]))
        writes.append(RowWrite(data, node.output[0], row, axis, offset, node.output[0]))
    del g.node[:]
    g.node.extend(nodes)
    return writes


def _constant(name: str, graph) -> bool:
    return name in {t.name for t in graph.initializer} or any(
        n.op_type == "Constant" and name in n.output for n in graph.node)


def _row_write(node, per_step: list[np.ndarray], shape: tuple) -> tuple[int, int, tuple]:
    """(axis, offset, row shape) of a scatter that writes row k + offset along one axis at every step k."""
    rank = len(shape)
    found = None
    for k, idx in enumerate(per_step):
        if node.op_type == "ScatterND":
            axis, pos = _nd_row(idx.astype(np.int64), shape)
            if axis is None:
                raise SplitRefused(f"{describe(node)} does not write exactly one whole row at step {k}; "
                                   "multi-row or partial writes cannot become a static step")
        else:
            axis = ge.attr(node, "axis", 0) % rank
            want = tuple(1 if d == axis else s for d, s in enumerate(shape))
            rows = np.unique(np.where(idx < 0, idx + shape[axis], idx))
            if idx.shape != want or rows.size != 1:
                what = f"{rows.size} rows" if rows.size != 1 else f"part of a row (indices {list(idx.shape)}, buffer {list(shape)})"
                raise SplitRefused(f"{describe(node)} writes {what} at step {k}; multi-row or partial writes "
                                   "cannot become a static step")
            pos = int(rows[0])
        if found is None:
            found = (axis, pos - k)
        if (axis, pos - k) != found:
            raise SplitRefused(f"{describe(node)} writes row {pos} at step {k}: the write position does not "
                               "follow the step counter")
        if not 0 <= pos < shape[axis]:
            raise SplitRefused(f"{describe(node)} writes outside its buffer at step {k}")
    axis, offset = found
    return axis, offset, tuple(1 if d == axis else s for d, s in enumerate(shape))


def _nd_row(idx: np.ndarray, shape: tuple) -> tuple[int | None, int]:
    """For ScatterND indices: the axis and position when they address one whole row in C order."""
    q = idx.shape[-1]
    flat = idx.reshape(-1, q)
    flat = np.where(flat < 0, flat + np.array(shape[:q]), flat)
    if flat.size == 0:
        return None, 0
    for axis in range(q):
        pos = int(flat[0, axis])
        grid = np.meshgrid(*[[pos] if d == axis else range(shape[d]) for d in range(q)], indexing="ij")
        want = np.stack(grid, -1).reshape(-1, q)
        if want.shape == flat.shape and np.array_equal(want, flat):
            return axis, pos
    return None, 0


def freeze_constants(body: LoopBody, same: dict[str, np.ndarray], names: graphs.Names) -> None:
    """Replace step-only tensors that hold one value at every step by initializers."""
    g = body.model.graph
    rename = {}
    for name, value in same.items():
        rename[name] = names.fresh(name + ".const")
        g.initializer.append(numpy_helper.from_array(value, rename[name]))
    for node in g.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    ge.prune(g)


def classify(body: LoopBody, writes: list[RowWrite]) -> None:
    """Give every non-append state its role from how the (pruned) body reads it."""
    g = body.model.graph
    readers = ge.consumers(g.node)
    by_state = {w.state: w for w in writes}
    for st in body.states:
        if st.role == "append":
            continue
        reads = readers.get(st.input, [])
        w = by_state.get(st.input)
        only_identities = w is not None and not _reads_through_identities(readers, w.result)
        if w is not None and resolve(g, st.output) == w.result and [r.output[0] for r in reads] == [w.where] \
                and only_identities:
            st.role = "write"
        elif not reads:
            st.role = "last"
        else:
            st.role = "recurrent"


def resolve(graph, name: str) -> str:
    """`name` with Identity nodes in front of it looked through."""
    made = ge.producers(graph.node)
    while name in made and made[name].op_type == "Identity":
        name = made[name].input[0]
    return name


def _reads_through_identities(readers: dict, name: str) -> list:
    """The nodes other than Identity that read `name`, directly or through Identity nodes."""
    found, stack = [], [name]
    while stack:
        for node in readers.get(stack.pop(), []):
            if node.op_type == "Identity":
                stack.append(node.output[0])
            else:
                found.append(node)
    return found
