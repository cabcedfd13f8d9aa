"""The suite's own rules: every test module outside the browser folder has a test in the quick subset."""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick
TESTS = Path(__file__).resolve().parent


def quick_marked(tree: ast.Module) -> bool:
    """A `pytestmark = pytest.mark.quick` or a test decorated with `@pytest.mark.quick`."""
    for node in ast.walk(tree):
        targets = node.decorator_list if isinstance(node, ast.FunctionDef) else \
            [node.value] if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "pytestmark" for t in node.targets) else []
        if any(ast.unparse(t) == "pytest.mark.quick" for t in targets):
            return True
    return False


@pytest.mark.parametrize("path", sorted(p.relative_to(TESTS).as_posix() for p in TESTS.rglob("test_*.py")
                                        if "browser" not in p.parts))
def test_each_module_has_a_quick_test(path):
    assert quick_marked(ast.parse((TESTS / path).read_text())), \
        f"{path}: mark its cheapest telling test @pytest.mark.quick (./run.sh test -m quick runs one of each module)"
