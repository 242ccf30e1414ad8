"""The house plan (README: "How the code is laid out"), checked on the source: each room imports only from rooms on
lower floors (or from itself), and no module imports itself back through others. Imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "voicecoach"
# Lowest first. A room is a folder of voicecoach/ or one of its top-level modules; rooms on one floor are
# independent of each other.
FLOORS: list[set[str]] = [
    {"voicecoach", "errors", "intents", "paths", "packs"},
    {"download"},
    {"voices"},
    {"engine"},
    {"training"},
    {"config_values"},
    {"config"},
    {"sound"},
    {"listen"},
    {"coach"},
    {"assembly"},
    {"daemon"},
    {"cli"},
    {"__main__"},
]
FLOOR = {room: n for n, rooms in enumerate(FLOORS) for room in rooms}


def module_name(path: Path) -> str:
    parts = path.with_suffix("").relative_to(PACKAGE.parent).parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The voicecoach modules path imports: `from voicecoach.x import y` is y where y is a module, else x."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "voicecoach":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "voicecoach"}
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_module_is_in_a_room_of_the_plan() -> None:
    unplaced = sorted(name for name in modules() if room(name) not in FLOOR)
    assert unplaced == [], f"put these in a room of FLOORS (and the README's plan): {unplaced}"


def test_imports_go_down_the_floors_never_up_or_across() -> None:
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if room(target) != room(name) and FLOOR.get(room(target), 99) >= FLOOR.get(room(name), -1)
    ]
    assert wrong == []


def test_no_module_imports_itself_back() -> None:
    edges = graph()
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str], done: set[str]) -> None:
        for target in sorted(edges.get(name, ())):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(edges):
        if name not in done:
            visit(name, [name], done)
    assert cycles == []


def test_the_checks_see_an_upward_import(tmp_path: Path) -> None:
    # The parser on a module that would break the plan: the engine reaching up into the daemon.
    source = tmp_path / "voicecoach" / "engine" / "bad.py"
    source.parent.mkdir(parents=True)
    source.write_text("from voicecoach.daemon import control\nfrom voicecoach.engine.session import Session\n")
    known = {"voicecoach.daemon.control": source, "voicecoach.engine.session": source}
    found = imports(source, known)
    assert found == {"voicecoach.daemon.control", "voicecoach.engine.session"}
    assert FLOOR[room("voicecoach.daemon.control")] > FLOOR[room("voicecoach.engine.bad")]
