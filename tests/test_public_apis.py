"""App code uses only the public, documented APIs of Django and of the libraries: no private
attribute of other code, no internal module. Tests and the benchmark may look inside; the app may not."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_FOLDERS = ("clinic_auth", "clinics", "users")

# Underscore names that are documented API: Model._meta (the Options API), Model._state (adding, db),
# the managers Django documents by these names, and namedtuple's methods.
DOCUMENTED_UNDERSCORE_NAMES = {"_meta", "_state", "_default_manager", "_base_manager", "_replace", "_asdict", "_fields"}

# Modules that hold a library's machinery rather than its API.
INTERNAL_MODULES = (
    "django.db.models.sql",
    "django.db.models.query",
    "django.db.models.query_utils",
    "django.db.backends",
    "django.template.base",
    "django.template.loader_tags",
    "django.template.defaulttags",
)
# Names a documented module holds that are its machinery, not its API.
INTERNAL_NAMES = {("django.contrib.auth.middleware", "get_user")}

# Names that are imported from a documented module but are not themselves documented, each with why
# the app needs it. Keep this list short.
ALLOWED_NAMES = {
    ("django.contrib.auth", "SESSION_KEY"): "whether a session belongs to a user, when listing a user's signed-in browsers",
    ("django.contrib.auth", "HASH_SESSION_KEY"): "whether a listed browser's session is still valid after the sessions were ended",
    ("django.contrib.sessions.backends.base", "UpdateError"): "how a session engine's save() says the row is gone (SessionMiddleware turns it into SessionInterrupted)",
}


def app_files():
    for folder in APP_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def own_names(tree: ast.AST) -> set[str]:
    """Every name the app's own code defines: functions, classes, names it assigns, and attributes it
    sets on its own instances (self.x = ...); not an attribute it sets on another library's object."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def private_uses(path: Path, defined_by_app: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute):
            name = node.attr
            if name.startswith("_") and not name.startswith("__") and name not in DOCUMENTED_UNDERSCORE_NAMES:
                if name not in defined_by_app:  # another library's private attribute, on any object, self included
                    found.append(f"{where} .{name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module != "__future__":
            if not node.module.startswith(APP_FOLDERS):
                if any(part.startswith("_") for part in node.module.split(".")) or node.module.startswith(INTERNAL_MODULES):
                    found.append(f"{where} from {node.module}")
                for alias in node.names:
                    private = alias.name.startswith(("_", "INTERNAL")) or (node.module, alias.name) in INTERNAL_NAMES
                    constant = alias.name.isupper() and "_" in alias.name  # SESSION_KEY, not Q or F
                    undocumented = constant and (node.module, alias.name) not in ALLOWED_NAMES
                    if private or (undocumented and node.module.startswith("django.")):
                        found.append(f"{where} from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(INTERNAL_MODULES) or any(part.startswith("_") for part in alias.name.split(".")):
                    found.append(f"{where} import {alias.name}")
    return found


def test_app_code_uses_no_private_attribute_and_no_internal_module():
    files = list(app_files())
    defined_by_app = set().union(*(own_names(ast.parse(path.read_text())) for path in files))
    found = [use for path in files for use in private_uses(path, defined_by_app)]
    assert found == []


def test_the_scan_finds_what_it_is_meant_to_find(tmp_path):
    """Control: the scan flags each kind of use it looks for."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from django.db.models.sql import UpdateQuery\n"
        "from django.contrib.auth.middleware import get_user\n"
        "from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN\n"
        "import django.template.base\n"
        "def f(queryset, node):\n"
        "    queryset._for_write = True\n"
        "    return node._render, queryset.query._meta\n"
        "class Store:\n"
        "    def g(self):\n"
        "        return self._session_cache, self._own\n"
        "    _own = 1\n"
    )
    found = private_uses(sample, defined_by_app=own_names(ast.parse(sample.read_text())))
    assert sorted(use.split(" ", 1)[1] for use in found) == sorted([
        "from django.db.models.sql",
        "from django.contrib.auth.middleware import get_user",
        "from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN",
        "import django.template.base",
        "._for_write",
        "._render",
        "._session_cache",
    ])
