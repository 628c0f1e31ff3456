"""The dependency rules between the source packages, checked on imports."""

import ast
import dataclasses
import pathlib
from collections.abc import Callable

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# Directories that hold no project source (or only tests, which may import
# anything).
_SKIPPED_DIRS = frozenset({"tests", "runs", "__pycache__", "node_modules"})
# The parts of lbie_tf that are not a task wing.
_SHARED_PARTS = frozenset({"core", "modeling"})
# What data_builders must not import: the models' libraries.
_KERAS = ("keras", "tensorflow.keras", "tf_keras")

# CoSaL's feature, metric and task names; lbie_tf/core must name none of
# them (it works unchanged for every task).
TASK_NAMES_IN_CORE = (
    "sentences",
    "color_labels",
    "shape_labels",
    "cosal",
    "iou_shapes",
    "miou_colors",
    "num_direct",
)
# (path, stripped line) pairs allowed to hold such a name: none (the task
# of configs written before `config.task` existed is the registry's legacy
# task, which the CoSaL wing declares).
ALLOWED_TASK_NAMES = frozenset()


def source_files(root):
    """Every .py file under `root` outside tests/ and hidden directories."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts[:-1]
        if any(p in _SKIPPED_DIRS or p.startswith(".") for p in parts):
            continue
        yield path


def _package_of(relative_path):
    """The dotted package a module (or package __init__) file is in."""
    return ".".join(relative_path.parts[:-1])


def _resolve_relative(package, level, module):
    """`from ..x import y` in `package` -> the absolute module name."""
    parts = package.split(".") if package else []
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    if module:
        parts.append(module)
    return ".".join(parts)


def imported_modules(path, root):
    """(line, module) for every import in the file, wherever it is.

    `from a import b` yields "a.b" (b may be a submodule); constant string
    arguments of `importlib.import_module` count as imports too.
    """
    relative = path.relative_to(root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = _resolve_relative(
                    _package_of(relative), node.level, node.module
                )
            for alias in node.names:
                if alias.name == "*":
                    yield node.lineno, module
                else:
                    yield node.lineno, f"{module}.{alias.name}".strip(".")
        elif (
            isinstance(node, ast.Call)
            and _is_import_module(node.func)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _is_import_module(func):
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in (
        "import_module",
        "__import__",
    )


def _under(module, package):
    return module == package or module.startswith(package + ".")


def _lbie_part(module):
    """ "lbie_tf.cosal.models" -> "cosal"; None outside lbie_tf's parts."""
    parts = module.split(".")
    if parts[0] != "lbie_tf" or len(parts) < 2:
        return None
    return parts[1]


def task_wings(root):
    """The subpackages of lbie_tf other than core and modeling."""
    package = root / "lbie_tf"
    if not package.is_dir():
        return frozenset()
    return frozenset(
        child.name
        for child in package.iterdir()
        if (child / "__init__.py").is_file() and child.name not in _SHARED_PARTS
    )


@dataclasses.dataclass(frozen=True)
class Rule:
    """One dependency rule: `applies(path_parts, wings)` says which files
    it reads, `forbids(path_parts, module, wings)` which imports break it."""

    name: str
    applies: Callable[[tuple, frozenset], bool]
    forbids: Callable[[tuple, str, frozenset], bool]


def _in(*prefix):
    return lambda parts, wings: parts[: len(prefix)] == prefix


def _shared_part_imports_a_task(parts, module, wings):
    part = _lbie_part(module)
    return part is not None and part not in _SHARED_PARTS


def _wing_of(parts, wings):
    if len(parts) > 2 and parts[0] == "lbie_tf" and parts[1] in wings:
        return parts[1]
    return None


def _wing_imports_another(parts, module, wings):
    part = _lbie_part(module)
    own = _wing_of(parts, wings)
    return part == "tasks" or (part in wings and part != own)


RULES = (
    Rule(
        "keras_layers imports no lbie_tf",
        _in("keras_layers"),
        lambda parts, module, wings: _under(module, "lbie_tf"),
    ),
    Rule(
        "data_builders imports neither lbie_tf, keras_layers nor keras",
        _in("data_builders"),
        lambda parts, module, wings: any(
            _under(module, p) for p in ("lbie_tf", "keras_layers", *_KERAS)
        ),
    ),
    Rule(
        "lbie_tf/core imports no task",
        _in("lbie_tf", "core"),
        _shared_part_imports_a_task,
    ),
    Rule(
        "lbie_tf/modeling imports no task",
        _in("lbie_tf", "modeling"),
        _shared_part_imports_a_task,
    ),
    Rule(
        "a task wing imports no other wing",
        lambda parts, wings: _wing_of(parts, wings) is not None,
        _wing_imports_another,
    ),
    Rule(
        "nothing outside experiments imports experiments",
        lambda parts, wings: parts[0] != "experiments",
        lambda parts, module, wings: _under(module, "experiments"),
    ),
)
RULE_NAMES = tuple(rule.name for rule in RULES)


def import_violations(root, rule_name=None):
    """Every import in `root` that breaks a rule, as
    "path:line: rule: import module" strings."""
    root = pathlib.Path(root)
    wings = task_wings(root)
    rules = [r for r in RULES if rule_name in (None, r.name)]
    found = []
    for path in source_files(root):
        relative = path.relative_to(root)
        parts = relative.parts
        active = [r for r in rules if r.applies(parts, wings)]
        if not active:
            continue
        for line, module in imported_modules(path, root):
            for rule in active:
                if rule.forbids(parts, module, wings):
                    found.append(
                        f"{relative.as_posix()}:{line}: {rule.name}: "
                        f"import {module}"
                    )
    return found


def task_name_violations(root):
    """Every line of lbie_tf/core naming a task's feature, as
    "path:line: name in line" strings."""
    root = pathlib.Path(root)
    core = root / "lbie_tf" / "core"
    found = []
    if not core.is_dir():
        return found
    for path in sorted(core.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if (relative, line.strip()) in ALLOWED_TASK_NAMES:
                continue
            for name in TASK_NAMES_IN_CORE:
                if name in line:
                    found.append(
                        f"{relative}:{number}: {name!r} in {line.strip()!r}"
                    )
    return found


def _report(violations):
    return "\n".join(["Dependency rule violations:", *violations])


# The real tree.


@pytest.mark.parametrize("rule_name", RULE_NAMES)
def test_the_source_tree_follows_the_rule(rule_name):
    violations = import_violations(REPO, rule_name)
    assert not violations, _report(violations)


def test_lbie_tf_core_names_no_task_feature():
    violations = task_name_violations(REPO)
    assert not violations, _report(violations)


def test_the_checker_reads_the_real_tree():
    # Guards against a checker that passes because it reads nothing.
    files = {p.relative_to(REPO).parts[0] for p in source_files(REPO)}
    assert {"keras_layers", "data_builders", "lbie_tf", "experiments"} <= files
    assert "cosal" in task_wings(REPO)
    modules = {m for _, m in imported_modules(REPO / "lbie_tf/tasks.py", REPO)}
    assert "lbie_tf.cosal.task" in modules


# Synthetic trees: each rule catches a violation.


def _write(root, relative, text=""):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree(root):
    """A compliant tree: two wings, core, keras_layers, data_builders."""
    for package in (
        "keras_layers",
        "data_builders",
        "data_builders/cosal",
        "lbie_tf",
        "lbie_tf/core",
        "lbie_tf/modeling",
        "lbie_tf/cosal",
        "lbie_tf/referit",
        "experiments",
        "benchmarks",
    ):
        _write(root, f"{package}/__init__.py")
    _write(
        root, "keras_layers/gate.py", "import keras\nfrom keras import ops\n"
    )
    _write(root, "data_builders/cosal/builder.py", "import tensorflow as tf\n")
    _write(
        root,
        "lbie_tf/core/task.py",
        "from lbie_tf.core import errors\nfrom lbie_tf.modeling import heads\n"
        "from . import errors as again\nimport keras_layers\n",
    )
    _write(
        root,
        "lbie_tf/cosal/task.py",
        "from lbie_tf.core import task\nfrom lbie_tf.cosal import models\n"
        "from .models import build\nfrom keras_layers import gate\n",
    )
    _write(root, "lbie_tf/tasks.py", "from lbie_tf.cosal import task\n")
    _write(root, "experiments/train.py", "from experiments import cli\n")
    _write(root, "tests/any_test.py", "import experiments.train\n")


def test_a_compliant_synthetic_tree_is_clean(tmp_path):
    _tree(tmp_path)
    assert import_violations(tmp_path) == []
    assert task_name_violations(tmp_path) == []
    assert task_wings(tmp_path) == {"cosal", "referit"}


# (file, its source, the rule, the line and import the report must show).
VIOLATIONS = [
    (
        "keras_layers/bad.py",
        "import lbie_tf.core.errors\n",
        "keras_layers imports no lbie_tf",
        "1: keras_layers imports no lbie_tf: import lbie_tf.core.errors",
    ),
    (
        "keras_layers/bad.py",
        "import keras\n\n\ndef f():\n    from lbie_tf.cosal import models\n",
        "keras_layers imports no lbie_tf",
        "5: keras_layers imports no lbie_tf: import lbie_tf.cosal.models",
    ),
    (
        "data_builders/cosal/bad.py",
        "from lbie_tf.cosal import input_pipeline\n",
        RULE_NAMES[1],
        f"1: {RULE_NAMES[1]}: import lbie_tf.cosal.input_pipeline",
    ),
    (
        "data_builders/cosal/bad.py",
        "import os\nfrom keras_layers.gate import Gate\n",
        RULE_NAMES[1],
        f"2: {RULE_NAMES[1]}: import keras_layers.gate.Gate",
    ),
    (
        "data_builders/cosal/bad.py",
        "import keras\n",
        RULE_NAMES[1],
        f"1: {RULE_NAMES[1]}: import keras",
    ),
    (
        "data_builders/cosal/bad.py",
        "from tensorflow import keras\n",
        RULE_NAMES[1],
        f"1: {RULE_NAMES[1]}: import tensorflow.keras",
    ),
    (
        "lbie_tf/core/bad.py",
        "from lbie_tf.cosal import models\n",
        "lbie_tf/core imports no task",
        "1: lbie_tf/core imports no task: import lbie_tf.cosal.models",
    ),
    (
        "lbie_tf/core/bad.py",
        "from lbie_tf import core, referit\n",
        "lbie_tf/core imports no task",
        "1: lbie_tf/core imports no task: import lbie_tf.referit",
    ),
    (
        "lbie_tf/core/bad.py",
        "def load():\n    import lbie_tf.tasks\n",
        "lbie_tf/core imports no task",
        "2: lbie_tf/core imports no task: import lbie_tf.tasks",
    ),
    (
        "lbie_tf/core/bad.py",
        "from ..cosal import losses\n",
        "lbie_tf/core imports no task",
        "1: lbie_tf/core imports no task: import lbie_tf.cosal.losses",
    ),
    (
        "lbie_tf/modeling/bad.py",
        "from lbie_tf.cosal.losses import Loss\n",
        "lbie_tf/modeling imports no task",
        "1: lbie_tf/modeling imports no task: import lbie_tf.cosal.losses.Loss",
    ),
    (
        "lbie_tf/cosal/bad.py",
        "from lbie_tf.referit import vgg16\n",
        "a task wing imports no other wing",
        "1: a task wing imports no other wing: import lbie_tf.referit.vgg16",
    ),
    (
        "lbie_tf/referit/bad.py",
        "import importlib\n\nimportlib.import_module('lbie_tf.cosal.task')\n",
        "a task wing imports no other wing",
        "3: a task wing imports no other wing: import lbie_tf.cosal.task",
    ),
    (
        "lbie_tf/cosal/bad.py",
        "from lbie_tf import tasks\n",
        "a task wing imports no other wing",
        "1: a task wing imports no other wing: import lbie_tf.tasks",
    ),
    (
        "lbie_tf/cosal/bad.py",
        "from experiments.configs import cosal\n",
        RULE_NAMES[-1],
        f"1: {RULE_NAMES[-1]}: import experiments.configs.cosal",
    ),
    (
        "benchmarks/bad.py",
        "def main():\n    import experiments.cli\n",
        RULE_NAMES[-1],
        f"2: {RULE_NAMES[-1]}: import experiments.cli",
    ),
    (
        "keras_layers/bad.py",
        "from experiments import cli\n",
        RULE_NAMES[-1],
        f"1: {RULE_NAMES[-1]}: import experiments.cli",
    ),
]


@pytest.mark.parametrize("relative, source, rule, shown", VIOLATIONS)
def test_a_violation_is_reported_with_file_line_and_import(
    tmp_path, relative, source, rule, shown
):
    _tree(tmp_path)
    _write(tmp_path, relative, source)
    assert f"{relative}:{shown}" in import_violations(tmp_path)
    # The rule alone reports it too, and the real tree's test would fail.
    assert import_violations(tmp_path, rule) == [f"{relative}:{shown}"]


def test_every_rule_has_a_synthetic_violation():
    assert {rule for _, _, rule, _ in VIOLATIONS} == set(RULE_NAMES)


def test_a_task_name_in_core_is_reported(tmp_path):
    _tree(tmp_path)
    _write(
        tmp_path,
        "lbie_tf/core/input_pipeline.py",
        '"""Pipeline."""\n\nKEYS = ("image", "color_labels")\n',
    )
    assert task_name_violations(tmp_path) == [
        "lbie_tf/core/input_pipeline.py:3: 'color_labels' in "
        '\'KEYS = ("image", "color_labels")\''
    ]


def test_a_legacy_task_constant_in_core_is_reported(tmp_path):
    _tree(tmp_path)
    _write(tmp_path, "lbie_tf/core/export_lib.py", 'LEGACY_TASK = "cosal"\n')
    assert task_name_violations(tmp_path) == [
        "lbie_tf/core/export_lib.py:1: 'cosal' in 'LEGACY_TASK = \"cosal\"'",
    ]
