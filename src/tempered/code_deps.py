"""The source files a `python -m tempered <step>` command runs, found statically, so that each pipeline stage
depends on its own code and not on the whole package: a figure's colour changed in stages/ood/figures.py reruns the
stages that draw it, not days of training. Snakemake rules list these files as inputs (rules/common.smk `code`),
and dvc.yaml's stages inherit them as deps.

The closure of a step is read from the source with `ast`, without importing anything (Snakemake computes it
while parsing the workflow, and torch takes seconds to import):
- the entry every step runs: tempered/__init__.py, __main__.py, cli.py and stages/__init__.py, with what cli.py
  imports at module level;
- the steps module of the stage that registers the step (stages/<stage>/steps.py, with stages/<stage>/__init__.py
  that importing it runs): its module-level imports, and the imports inside every function the registration
  reaches (the step's function, and the module's functions it calls, followed);
- every other module of the package reached so far (a method package's, or a stage's tables and figures, its own
  or another stage's): its module-level imports and the imports inside the functions reached, followed to a fixed
  point; importing a.b.c runs a/__init__.py and a/b/__init__.py too.

Left out on purpose: the other stages' steps modules (cli imports them only to register their argument parsers,
which change no output) and the run commands' lazy imports in cli.py (export-dvc, preflight, costs: not steps).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PACKAGE = "tempered"
PACKAGE_DIR = Path(__file__).resolve().parent  # the package imported: read, not assumed to be the repository's
SOURCE_DIR = Path("src") / PACKAGE  # where the repository holds it
STAGES_PACKAGE = f"{PACKAGE}.stages"
ENTRY_MODULES = (PACKAGE, f"{PACKAGE}.__main__", STAGES_PACKAGE)
CLI_MODULE = f"{PACKAGE}.cli"


# What an import binds: (module, name) for `from module import name`, (module, None) for a module used whole.
Binding = tuple[str, "str | None"]


@dataclass
class ModuleSource:
    """What one module of the package defines, imports and registers, read from its syntax tree."""

    path: Path
    top_imports: list[Binding] = field(default_factory=list)  # module-level imports (run on import)
    top_names: set[str] = field(default_factory=set)  # names module-level statements use (run on import)
    bound: dict[str, Binding] = field(default_factory=dict)  # module-level name -> what its import binds
    defs: dict[str, set[str]] = field(default_factory=dict)  # function or class -> the names its body uses
    def_imports: dict[str, list[Binding]] = field(default_factory=dict)  # imports inside each function or class
    registered: dict[str, set[str]] = field(default_factory=dict)  # CLI step -> names its registration uses
    runs_code: bool = True  # False for a module of nothing but its docstring (most packages' __init__.py)


def module_path(module: str) -> Path | None:
    """The file of a module of the package (a package's __init__.py), or None when it is not one."""
    if module != PACKAGE and not module.startswith(f"{PACKAGE}."):
        return None
    relative = Path(*module.split(".")[1:])
    candidates = [PACKAGE_DIR / relative / "__init__.py"]
    if module != PACKAGE:
        candidates.append(PACKAGE_DIR / relative.with_suffix(".py"))
    for path in candidates:
        if path.is_file():
            return path
    return None


def _bindings(node: ast.Import | ast.ImportFrom, importer: str) -> dict[str, Binding]:
    """Local name -> what the import statement binds to it (`from a import b`: a module when a.b is one)."""
    if isinstance(node, ast.Import):
        return {(alias.asname or alias.name.split(".")[0]): (alias.name, None) for alias in node.names}
    base = node.module or ""
    if node.level:  # relative: against the importer's package (itself when it is a package's __init__.py)
        path = module_path(importer)
        package = importer.split(".") if path is not None and path.name == "__init__.py" else importer.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    bound: dict[str, Binding] = {}
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        bound[alias.asname or alias.name] = (submodule, None) if module_path(submodule) else (base, alias.name)
    return bound


def _imports_in(node: ast.AST, importer: str) -> dict[str, Binding]:
    return {name: binding for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)
            for name, binding in _bindings(n, importer).items()}


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _registrations(function: ast.FunctionDef, add_step: str | None) -> dict[str, set[str]]:
    """`add_step("name", func, ...)` calls in a function: step name -> the names `func` uses."""
    steps: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == add_step
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)):
            steps[str(node.args[0].value)] = _names_in(node.args[1])
    return steps


@cache
def read_module(module: str) -> ModuleSource:
    path = module_path(module)
    if path is None:
        raise KeyError(f"{module} is not a module of {PACKAGE} (no file under {PACKAGE_DIR})")
    tree = ast.parse(path.read_text(), filename=str(path))
    source = ModuleSource(path)
    source.runs_code = not all(isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                               for stmt in tree.body)
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            source.defs[stmt.name] = _names_in(stmt)
            source.def_imports[stmt.name] = list(_imports_in(stmt, module).values())
            # Decorators and base classes run when the module is imported.
            source.top_names |= set().union(*map(_names_in, [*stmt.decorator_list, *getattr(stmt, "bases", [])]))
            if stmt.name == "register" and isinstance(stmt, ast.FunctionDef) and stmt.args.args:
                source.registered = _registrations(stmt, stmt.args.args[0].arg)  # a stage's register(add_step)
            if stmt.name == "build_parser" and isinstance(stmt, ast.FunctionDef):
                source.registered = _registrations(stmt, "step")  # cli.py's own run commands
        else:
            imports = _imports_in(stmt, module)
            source.bound |= imports
            source.top_imports += imports.values()
            source.top_names |= _names_in(stmt)
    return source


class Closure:
    """The package modules a run loads and the functions and classes of them it can reach (module docstring)."""

    def __init__(self, excluded: set[tuple[str, str]]) -> None:
        self.loaded: set[str] = set()
        self.reached: set[tuple[str, str]] = set(excluded)  # never followed

    def load(self, module: str) -> None:
        """Importing a.b.c runs a/__init__.py, a/b/__init__.py and a/b/c.py at module level."""
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in self.loaded or module_path(name) is None:
                continue
            self.loaded.add(name)
            source = read_module(name)
            for binding in source.top_imports:
                self.bind(binding, load_only=True)
            self.use(name, source.top_names)

    def bind(self, binding: Binding, load_only: bool = False) -> None:
        module, name = binding
        if module_path(module) is None:
            return
        self.load(module)
        if name is not None:
            self.use(module, {name})
        elif not load_only:
            self.use(module, set(read_module(module).defs) | set(read_module(module).bound))

    def use(self, module: str, names: set[str]) -> None:
        """Names used in `module`: its own functions and classes, followed, and names its imports bound."""
        source = read_module(module)
        for name in names:
            if name in source.defs and (module, name) not in self.reached:
                self.reached.add((module, name))
                for binding in source.def_imports[name]:
                    self.bind(binding)
                self.use(module, source.defs[name])
            elif name in source.bound and name not in source.defs:
                self.bind(source.bound[name])


@cache
def stage_of_step() -> dict[str, str]:
    """Every CLI command -> the module that registers it: a stage's steps module for a step, cli.py for a run
    command."""
    from tempered.stages import STAGES

    owners = dict.fromkeys(read_module(CLI_MODULE).registered, CLI_MODULE)
    for stage in STAGES:
        module = f"{STAGES_PACKAGE}.{stage}.steps"
        owners |= dict.fromkeys(read_module(module).registered, module)
    return owners


@cache
def step_modules(step: str) -> frozenset[str]:
    """The package modules `python -m tempered <step>` can run (module docstring: what is in, what is left out)."""
    owners = stage_of_step()
    if step not in owners:
        raise KeyError(f"no module registers the command {step!r}; commands: {', '.join(sorted(owners))}")
    cli_commands = read_module(CLI_MODULE).registered
    others = set().union(*(names for command, names in cli_commands.items() if command != step))
    closure = Closure(excluded={(CLI_MODULE, name) for name in others})
    for module in (*ENTRY_MODULES, CLI_MODULE):
        closure.load(module)
    closure.use(CLI_MODULE, {"main"})
    owner = owners[step]
    closure.load(owner)
    closure.use(owner, read_module(owner).registered[step])
    return frozenset(closure.loaded)


def step_files(step: str) -> list[str]:
    """The step's source files, sorted, as paths in the repository (what rules and stages list). A module that
    holds only its docstring is left out: it runs nothing, and a fifth of all deps on the quick preset were such
    __init__.py files (each is one more entry in dvc.lock that `dvc status` reads and checks). Nothing is lost:
    once it gains code it enters the list, and a changed list of inputs reruns the job under both engines."""
    return sorted(str(SOURCE_DIR / module_path(m).relative_to(PACKAGE_DIR)) for m in step_modules(step)
                  if read_module(m).runs_code)
