"""Issue 12, part 1: the 2FA core's shape, checked so it cannot quietly drift back."""

import ast
import inspect
from pathlib import Path

from clinic_auth.twofactor import services

ROOT = Path(__file__).resolve().parent.parent
APPS = {"users": ROOT / "users", "clinics": ROOT / "clinics", "twofactor": ROOT / "clinic_auth" / "twofactor"}
PACKAGE_OF = {"users": "users", "clinics": "clinics", "clinic_auth.twofactor": "twofactor"}


def imported_apps(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                for prefix, app in PACKAGE_OF.items():
                    if name == prefix or name.startswith(prefix + "."):
                        found.add(app)
    return found


def test_no_import_cycles_between_users_clinics_and_twofactor():
    graph = {app: imported_apps(folder) - {app} for app, folder in APPS.items()}
    assert graph["twofactor"] == set(), graph  # the core knows neither app; they call it
    for app, deps in graph.items():
        for dep in deps:
            assert app not in graph[dep], f"{app} and {dep} import each other"


def test_services_never_see_a_request_and_take_keywords_only():
    public = [
        function
        for name, function in inspect.getmembers(services, inspect.isfunction)
        if function.__module__ == services.__name__ and not name.startswith("_") and "_" in name
    ]
    assert len(public) >= 8
    for function in public:
        if function.__name__ == "format_recovery_code":
            continue
        parameters = inspect.signature(function).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), function.__name__
        assert "request" not in inspect.signature(function).parameters, function.__name__


def test_only_the_session_adapter_touches_the_session_for_2fa():
    touching = {
        path.name
        for path in APPS["twofactor"].rglob("*.py")
        if "migrations" not in path.parts and "request.session" in path.read_text()
    }
    assert touching == {"session.py"}
