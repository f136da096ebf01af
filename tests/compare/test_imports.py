"""Import direction in the comparator's area, counting imports inside functions: compare imports no
other converter layer and no ONNX library; runners and passes never reach verify; no cycle between the
modules of verify, runners, passes and compare."""

from __future__ import annotations

import itertools
import sys

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("converter", include_external_packages=True)


def test_compare_is_numpy_only(graph):
    modules = {m for m in graph.modules if m.startswith("converter.compare")}
    imported = {i for m in modules for i in graph.find_modules_directly_imported_by(m)} - modules
    stdlib = set(sys.stdlib_module_names)
    assert {i for i in imported if i.split(".")[0] not in stdlib} == {"numpy"}


@pytest.mark.parametrize("importer", ["converter.runners", "converter.passes", "converter.compare"])
def test_lower_layers_never_reach_verify(graph, importer):
    assert not graph.chain_exists(importer=importer, imported="converter.verify", as_packages=True)
    assert not graph.chain_exists(importer="converter.passes", imported="converter.runners", as_packages=True)


def test_no_cycles_between_modules_of_the_area(graph):
    area = sorted(m for m in graph.modules
                  if m.split(".")[:2] in (["converter", "verify"], ["converter", "runners"], ["converter", "passes"], ["converter", "compare"]))
    cycles = [(a, b) for a, b in itertools.combinations(area, 2)
              if graph.chain_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a)]
    assert cycles == []
