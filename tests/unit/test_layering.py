"""Imports run one way: pages/components -> state -> services -> models/core.

Layers, from the top (each may import itself and what is listed):

    app         creative_studio/creative_studio.py    everything (it assembles the app)
    views       creative_studio/pages, components,     state, services (constants only),
                layout.py                               models, core
    state       state/                                  services, models, core
    api         creative_studio/api/                    services, models, core
    jobs        jobs/                                   services, models, core
    services    services/                               models, core
    models/core models/, core/                          each other

and Reflex is imported only above services (never by services, jobs, models or core).
Every import counts, including the ones inside functions: a lazy import is still a dependency.
A few imports break the direction today; KNOWN_EXCEPTIONS names each with the move that
removes it. Pages are checked separately (no services beyond constants, no `Session(`).

Why a plain AST walk and not import-linter: the rules are a short table read by people,
the test reports every violation with file and line in one run, it also checks what import
contracts cannot (pages opening a database `Session(`), known exceptions carry their reason
beside them, and it adds no dependency or config file to keep in step.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("creative_studio", "state", "services", "models", "core", "jobs")

# Which of our layers each layer may import (besides third-party and standard library).
ALLOWED: dict[str, frozenset[str]] = {
    "app": frozenset({"app", "views", "api", "state", "services", "jobs", "models", "core"}),
    "views": frozenset({"views", "state", "services", "models", "core"}),
    "state": frozenset({"state", "services", "models", "core"}),
    "api": frozenset({"api", "services", "models", "core"}),
    "jobs": frozenset({"jobs", "services", "models", "core"}),
    "services": frozenset({"services", "models", "core"}),
    "models": frozenset({"models", "core"}),
    "core": frozenset({"core", "models"}),
}
# Layers below the UI: no Reflex.
NO_REFLEX = frozenset({"jobs", "services", "models", "core"})

# The services modules a view may import: constants and catalogues, no behaviour.
VIEW_SERVICES_ALLOWED = frozenset({"services.error_codes"})

# Imports that break the direction today, each with why and what would remove it.
# test_every_known_exception_is_still_needed fails once one is gone, so the list only shrinks.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("core.manage", "services.catalog"): (
        "`python -m core.manage` is a command-line entry point living in core; "
        "moving it above services (e.g. a top-level manage module) removes this."
    ),
    ("core.manage", "services.seed"): "same entry point as above (`manage seed`).",
    ("core.manage", "services.help_center"): (
        "same entry point as above (`manage migrate` loads the help articles)."
    ),
    ("core.startup", "services.catalog"): (
        "the app's on-start hook loads the catalogs; it belongs beside the app "
        "(creative_studio) rather than in core."
    ),
    ("core.startup", "jobs.scheduler"): "the same on-start hook starts the inline scheduler.",
    ("state.operator_jobs", "jobs.definitions"): (
        "the operator jobs page lists the job catalogue (ids, intervals, descriptions), which "
        "is defined in jobs/; a catalogue below services (read by both) removes this."
    ),
}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    importer: str  # dotted module name of the file
    target: str  # dotted module name imported


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of one of our modules, None for third-party and standard library."""
    top = module.split(".")[0]
    if top in ("state", "services", "models", "core", "jobs"):
        return top
    if top != "creative_studio":
        return None
    if module.startswith("creative_studio.api"):
        return "api"
    if module.startswith(
        ("creative_studio.pages", "creative_studio.components", "creative_studio.layout")
    ):
        return "views"
    return "app"  # creative_studio/__init__.py and creative_studio/creative_studio.py


def _source_files() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path, source: str | None = None) -> list[Import]:
    """Every import in the file (or in `source`, read as that file), top-level or not."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = []
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from services import policy` imports the module services.policy.
            submodules = [f"{module}.{alias.name}" for alias in node.names]
            targets = [name for name in submodules if _is_module(name)] or [module]
        found += [Import(path, node.lineno, importer, target) for target in targets]
    return found


def _where(item: Import) -> str:
    return f"{item.path.relative_to(ROOT)}:{item.line}"


def _direction_violations() -> list[tuple[Import, str]]:
    violations = []
    for path in _source_files():
        for item in _imports(path):
            layer = layer_of(item.importer)
            target_layer = layer_of(item.target)
            top = item.target.split(".")[0]
            if target_layer is not None and target_layer not in ALLOWED[layer]:
                violations.append(
                    (item, f"{layer} may import only {', '.join(sorted(ALLOWED[layer]))}")
                )
            elif top == "reflex" and layer in NO_REFLEX:
                violations.append((item, f"{layer} never imports Reflex"))
    return violations


def _is_known(item: Import) -> bool:
    return any(
        item.importer == importer
        and (item.target == target or item.target.startswith(target + "."))
        for importer, target in KNOWN_EXCEPTIONS
    )


def test_imports_run_one_way():
    unexpected = [
        f"{_where(item)}: {item.importer} imports {item.target} ({why})"
        for item, why in _direction_violations()
        if not _is_known(item)
    ]
    assert not unexpected, "Imports against the layer direction:\n" + "\n".join(unexpected)


def test_every_known_exception_is_still_needed():
    seen = {
        (importer, target)
        for item, _ in _direction_violations()
        for importer, target in KNOWN_EXCEPTIONS
        if item.importer == importer
        and (item.target == target or item.target.startswith(target + "."))
    }
    gone = sorted(set(KNOWN_EXCEPTIONS) - seen)
    assert not gone, f"No longer imported, delete from KNOWN_EXCEPTIONS: {gone}"


def _view_violations(files: list[Path]) -> list[str]:
    """Services imports beyond the allowed constants, and `Session(` calls, in view modules."""
    problems = []
    for path in files:
        for item in _imports(path):
            if layer_of(item.target) == "services" and item.target not in VIEW_SERVICES_ALLOWED:
                problems.append(
                    f"{_where(item)}: imports {item.target} "
                    "(a view reads state; services are called by state handlers)"
                )
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name == "Session":
                    problems.append(
                        f"{path.relative_to(ROOT)}:{node.lineno}: opens a database Session "
                        "(state handlers do, through OrgPageState._act / core.db)"
                    )
    return problems


def test_components_and_layout_hold_views_only():
    files = [
        path
        for path in _source_files()
        if layer_of(module_name(path)) == "views"
        and not module_name(path).startswith("creative_studio.pages")
    ]
    problems = _view_violations(files)
    assert not problems, "View code doing state's work:\n" + "\n".join(problems)


def test_pages_hold_views_only():
    files = [
        path for path in _source_files() if module_name(path).startswith("creative_studio.pages")
    ]
    problems = _view_violations(files)
    assert not problems, "Pages doing state's work:\n" + "\n".join(problems)


def test_the_check_sees_what_it_should():
    """The walker itself: lazy, relative and `from package import module` imports; layers."""
    source = (
        "import reflex as rx\n"
        "from services import policy, errors\n"
        "from . import org_page\n"
        "def handler():\n"
        "    from creative_studio.pages import team\n"
    )
    imports = _imports(ROOT / "state" / "example.py", source)
    assert [(item.line, item.target) for item in imports] == [
        (1, "reflex"),
        (2, "services.policy"),
        (2, "services.errors"),
        (3, "state.org_page"),
        (5, "creative_studio.pages.team"),
    ]
    assert layer_of("creative_studio.pages.team") == "views"
    assert layer_of("creative_studio.layout") == "views"
    assert layer_of("creative_studio.api.assets") == "api"
    assert layer_of("creative_studio.creative_studio") == "app"
    assert layer_of("sqlmodel") is None
    assert len(_source_files()) > 50
