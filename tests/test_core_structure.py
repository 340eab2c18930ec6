"""The code's shape, checked so it cannot quietly drift back: which part may import which, services
that never see a request, one session adapter, one place for the clinic-admin check and for e-mail."""

import ast
import inspect
import pkgutil
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWOFACTOR = ROOT / "clinic_auth" / "twofactor"
METHODS = ("totp", "recovery", "signin_code", "passkeys")


def part_of(path: Path) -> str:
    """The part a file belongs to: "base" (clinic_auth's shared modules), "twofactor" (the core),
    "twofactor.<method>", "clinics", "users", or "wiring" (settings, the root URLconf, wsgi)."""
    parts = path.with_suffix("").parts
    if parts[0] in ("users", "clinics"):
        return parts[0]
    if parts[:2] == ("clinic_auth", "twofactor"):
        return f"twofactor.{parts[2]}" if len(parts) > 3 and parts[2] in METHODS else "twofactor"
    if parts[0] == "clinic_auth":
        return "wiring" if parts[-1] in ("settings", "urls", "wsgi") else "base"
    raise ValueError(path)


def module_part(name: str) -> str | None:
    """The part a dotted module name belongs to (None for anything outside the app)."""
    parts = name.split(".")
    if parts[0] in ("users", "clinics"):
        return parts[0]
    if parts[:2] == ["clinic_auth", "twofactor"]:
        return f"twofactor.{parts[2]}" if len(parts) > 2 and parts[2] in METHODS else "twofactor"
    if parts[0] == "clinic_auth":
        return "wiring" if len(parts) > 1 and parts[1] in ("settings", "urls", "wsgi") else "base"
    return None


def imported_modules(path: Path, source: str) -> set[str]:
    """Every module a file (`path` from the project's root) imports, relative imports resolved."""
    package = ".".join(path.with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import session`
    return found


def app_files() -> dict[Path, str]:
    """{path from the project's root: source} of every app file."""
    return {
        path.relative_to(ROOT): path.read_text()
        for folder in ("clinic_auth", "clinics", "users")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
    }


def arrows(files: dict[Path, str]) -> set[tuple[str, str, str]]:
    """(importing part, imported part, file) for every import between two different parts."""
    found = set()
    for path, source in files.items():
        here = part_of(path)
        for module in imported_modules(path, source):
            there = module_part(module)
            if there is not None and there != here:
                found.add((here, there, str(path)))
    return found


# Who may import whom. The base knows no app; the 2FA core knows neither clinics nor users, and of
# its methods only their models (which it reads across methods) and their registrations on the
# sign-in code page; a method knows the core and the recovery codes every method issues, never
# another method; clinics knows the 2FA core; users may use all of them.
ALLOWED = {
    "base": set(),
    "twofactor": {"base"} | {f"twofactor.{method}" for method in METHODS},
    **{f"twofactor.{method}": {"base", "twofactor", "twofactor.recovery"} for method in METHODS},
    "clinics": {"base", "twofactor"} | {f"twofactor.{method}" for method in METHODS},
    "users": {"base", "twofactor", "clinics"} | {f"twofactor.{method}" for method in METHODS},
}
# Of a method's package, the core imports only these modules: its models, and the registration the
# sign-in code page (methods.py) and My Profile's 2FA part (profile.py) compose.
CORE_MAY_IMPORT_FROM_A_METHOD = {"models", "method", "forms", "services", "qr"}


def test_every_import_between_parts_runs_the_allowed_way():
    wrong = sorted(
        (here, there, where) for here, there, where in arrows(app_files()) if here != "wiring" and there not in ALLOWED[here]
    )
    assert wrong == []


def test_the_core_takes_only_what_it_composes_from_each_method():
    wrong = []
    for path, source in app_files().items():
        if part_of(path) != "twofactor":
            continue
        for module in imported_modules(path, source):
            part = module_part(module)
            if part and part.startswith("twofactor.") and part != "twofactor":
                inside = module.split(".")[3:4]
                if inside and inside[0] not in CORE_MAY_IMPORT_FROM_A_METHOD:
                    wrong.append((str(path), module))
    assert wrong == []


def module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycle_between_modules():
    """The core composes the methods (methods.py, profile.py) and the methods use the core, but no
    module ever imports, through others, a module that imports it."""
    files = app_files()
    modules = {module_name(path): path for path in files}
    graph = {
        name: {module for module in imported_modules(path, files[path]) if module in modules and module != name}
        for name, path in modules.items()
    }
    seen, on_path = set(), []

    def visit(name):
        if name in on_path:
            raise AssertionError(" -> ".join(on_path[on_path.index(name):] + [name]))
        if name in seen:
            return
        on_path.append(name)
        for imported in graph[name]:
            visit(imported)
        on_path.pop()
        seen.add(name)

    for name in graph:
        visit(name)


def test_the_check_finds_a_forbidden_import():
    """Control: an import the rules forbid shows up as one."""
    probe = {Path("clinic_auth/twofactor/totp/probe.py"): "from users.models import User\nfrom ..passkeys import services\n"}
    wrong = {(here, there) for here, there, _ in arrows(probe) if there not in ALLOWED[here]}
    assert wrong == {("twofactor.totp", "users"), ("twofactor.totp", "twofactor.passkeys")}


def service_modules():
    names = ["clinic_auth.twofactor.services", "users.services", "users.membership"]
    names += [f"clinic_auth.twofactor.{method}.services" for method in METHODS]
    return [import_module(name) for name in names]


def test_services_never_see_a_request_and_take_keywords_only():
    public = [
        function
        for module in service_modules()
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not name.startswith("_") and "_" in name
    ]
    assert len(public) >= 25
    for function in public:
        if function.__name__ in ("format_recovery_code", "invitation_token_hash", "usable_invitation"):
            continue  # pure helpers: a string in, a string (or a lookup) out
        parameters = inspect.signature(function).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), function.__name__
        assert "request" not in inspect.signature(function).parameters, function.__name__


def test_each_method_is_a_package_of_its_own():
    for method in METHODS:
        package = TWOFACTOR / method
        modules = {info.name for info in pkgutil.iter_modules([str(package)])}
        assert {"services", "views", "urls"} <= modules, (method, modules)
    # No method is chosen by name anywhere in the core: each is a CodeMethod with its own verify.
    core = "\n".join(path.read_text() for path in TWOFACTOR.glob("*.py"))
    assert "CODE_MODELS" not in core and 'kind == "' not in core


def test_no_2fa_view_is_left_in_the_users_app():
    views = (ROOT / "users" / "views.py").read_text()
    for name in ("ReauthenticateView", "DisableOwn2FAView", "UserDisable2FAView", "RenameKeyView", "RemoveKeyView",
                 "AddKeyView", "UserSigninCodeView", "RemindMembersView", "SetupView", "ChallengeView"):
        assert f"class {name}" not in views, name


def test_only_the_session_adapter_touches_the_session_for_2fa():
    touching = {
        str(path.relative_to(TWOFACTOR))
        for path in TWOFACTOR.rglob("*.py")
        if "migrations" not in path.parts and "request.session" in path.read_text()
    }
    assert touching == {"session.py"}


def test_one_clinic_admin_check_and_one_e_mail_helper():
    sources = app_files()
    admin_checks = [str(path) for path, text in sources.items() if "is_clinic_admin:" in text and "raise PermissionDenied" in text]
    assert admin_checks == ["clinic_auth/permissions.py"]
    senders = [str(path) for path, text in sources.items() if "send_mail(" in text]
    assert senders == ["clinic_auth/mail.py"]
    assert "def client_ip" in (ROOT / "clinic_auth" / "http.py").read_text()
