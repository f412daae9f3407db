"""No import cycle anywhere in the package, within a layer too (the import-linter layers
contract in pyproject.toml only sees imports between layers)."""

from __future__ import annotations

import grimp


def cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Direct imports whose target imports its importer back, directly or not. Every cycle
    has at least one such edge going up in name order, so each is reported once or more."""
    return sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if module < imported and graph.chain_exists(importer=imported, imported=module))


def test_no_module_of_the_package_imports_itself_back() -> None:
    assert cycles(grimp.build_graph("onboardd")) == []


def test_a_cycle_within_one_folder_is_found() -> None:
    graph = grimp.build_graph("onboardd")
    graph.add_import(importer="onboardd.domain.money", imported="onboardd.domain.offers")
    assert ("onboardd.domain.money", "onboardd.domain.offers") in cycles(graph)
