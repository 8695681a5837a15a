"""Execution environment (issue 12 item 1): what ansible-builder 3 sees of this collection, and whether it is all
the code needs.

No container runtime exists here, so generating the build context is the test:

- the collection is built (`ansible-galaxy collection build`) and installed from the tarball into an empty
  collections path, so what is checked is what a user's EE build would install, not the checkout;
- `ansible-builder introspect --sanitize` over that path lists the Python and system requirements; every
  third-party import of plugins/ (parsed with `ast`: imports, `importlib.import_module` of constants and the
  distribution names given to `MissingDependency`) maps to a distribution that is listed, and every binary that
  the roles and playbooks run (command argv, pipe lookups, the zoneinfo files they read) maps to a listed package;
- the requirement files name no ansible-core and no pinned or upper-bounded version (Automation Hub's rule);
- `ansible-builder create` from the top-level execution-environment.yml writes a build context whose galaxy
  requirements install the tarball copied into it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)

BIN = Path(sys.executable).parent

# The binaries the roles run, and the package that provides each (same name on rpm and dpkg families).
BINARY_PACKAGES = {"date": "coreutils", "true": "coreutils"}
# Files the roles read from the system, and their package.
SYSTEM_FILES = {"/usr/share/zoneinfo": "tzdata"}
# Playbooks that only run in the lab (make demo) and are not what an EE runs.
LAB_ONLY = {"demo_issue.yml", "demo_lab.yml"}


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=ansible_env(), timeout=300, check=False,
                          **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalize(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]))
    return names


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The collection tarball, and a collections path with only it installed from that tarball."""
    work = tmp_path_factory.mktemp("ee")
    run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(work / "dist")], work)
    tarball = next((work / "dist").glob("byoc-certificates-*.tar.gz"))
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", "-p",
         str(work / "collections"), str(tarball)], work)
    assert (work / "collections" / "ansible_collections" / "byoc" / "certificates" / "MANIFEST.json").is_file()
    return {"work": work, "tarball": tarball, "collections": work / "collections"}


@pytest.fixture(scope="module")
def introspected(built):
    work = built["work"]
    proc = run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(built["collections"]),
                "--write-pip", str(work / "pip.txt"), "--write-bindep", str(work / "bindep.txt")], work)
    pip = (work / "pip.txt").read_text().splitlines()
    bindep = (work / "bindep.txt").read_text().splitlines()
    # everything that introspect found came from this collection (the path holds nothing else)
    assert all("from collection byoc.certificates" in line for line in pip + bindep if line.strip())
    return {"stdout": proc.stdout, "pip": pip, "bindep": bindep}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level import name -> files, for every import in plugins/ that is neither stdlib nor Ansible's."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        constants = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)
                     and isinstance(n.value.value, str)}
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                arg = node.args[0]
                value = None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    value = arg.value
                elif isinstance(arg, ast.Name):
                    value = constants.get(arg.id)
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.FormattedValue) \
                        and isinstance(arg.values[0].value, ast.Name):
                    value = constants.get(arg.values[0].value.id)  # f"{_PKG}.{sub}"
                if value and fname == "import_module":
                    names.add(value)
                elif value and fname == "MissingDependency":
                    names.add(value)  # the distribution the module asks for (the message users see)
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in ("ansible", "ansible_collections", "__future__"):
                continue
            found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def distribution_of(import_name: str) -> str:
    dists = importlib.metadata.packages_distributions().get(import_name)
    if dists:
        return normalize(dists[0])
    importlib.metadata.distribution(import_name)  # a distribution name given to MissingDependency
    return normalize(import_name)


def test_every_third_party_import_is_an_ee_python_requirement(introspected):
    imports = third_party_imports()
    # the parser sees what the code is known to use (a parser that finds nothing would pass anything)
    assert {"cryptography", "dns", "boto3", "botocore", "paramiko", "PureCloudPlatformClientV2", "urllib3"} <= set(imports)
    listed = requirement_names(introspected["pip"])
    missing = {distribution_of(name): sorted(files) for name, files in imports.items()
               if distribution_of(name) not in listed}
    assert not missing, f"imported by plugins/ but not in meta/ee-requirements.txt: {missing}"


def command_binaries() -> dict[str, set[str]]:
    """Binary -> files, for every command the roles and playbooks run on the controller or in the EE."""
    found: dict[str, set[str]] = {}
    files = [p for p in sorted((REPO / "roles").rglob("*.yml")) + sorted((REPO / "playbooks").glob("*.yml"))
             if p.name not in LAB_ONLY]

    def add(binary: str, path: Path) -> None:
        found.setdefault(binary, set()).add(str(path.relative_to(REPO)))

    def walk(node, path: Path) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("ansible.builtin.command", "command", "ansible.builtin.shell", "shell",
                           "ansible.builtin.raw", "raw"):
                    if isinstance(value, dict) and value.get("argv"):
                        add(str(value["argv"][0]), path)
                    else:
                        text = value.get("cmd", "") if isinstance(value, dict) else str(value)
                        add(text.split()[0], path)
                walk(value, path)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    for path in files:
        text = path.read_text()
        walk(yaml.safe_load(text), path)
        for match in re.finditer(r"lookup\(\s*'(?:ansible\.builtin\.)?pipe'\s*,([^\n]*)", text):
            # the command is built from string literals and expressions: join the literals, drop VAR= assignments
            command = " ".join(re.findall(r"'([^']*)'", match.group(1)))
            words = [w for w in command.split() if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
            add(words[0] if words else command, path)
        for prefix in SYSTEM_FILES:
            if prefix in text:
                add(prefix, path)
    return found


def test_every_binary_the_roles_run_is_an_ee_system_requirement(introspected):
    binaries = command_binaries()
    assert "date" in binaries and "/usr/share/zoneinfo" in binaries  # the scan sees the maintenance-window check
    unknown = sorted(set(binaries) - set(BINARY_PACKAGES) - set(SYSTEM_FILES))
    assert not unknown, f"binaries run by roles/playbooks with no package in this test's table: {unknown}"
    runtime = {line.split()[0] for line in introspected["bindep"] if line.strip() and "compile" not in line}
    needed = {BINARY_PACKAGES.get(b) or SYSTEM_FILES.get(b) for b in binaries} - {None}
    assert needed <= runtime, f"missing from bindep.txt (runtime profile): {sorted(needed - runtime)}"


def test_requirements_name_no_ansible_core_and_no_pins_or_upper_bounds(introspected):
    for line in introspected["pip"] + introspected["bindep"]:
        spec = line.split("#", 1)[0]
        assert not re.search(r"==|<|~=|!=|===", spec), line
        assert not re.match(r"\s*(ansible-core|ansible|ansible-base)\b(?!-)", spec), line
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 1
    assert (REPO / meta["dependencies"]["python"]).is_file() and (REPO / meta["dependencies"]["system"]).is_file()


def test_builder_create_writes_a_context_that_installs_the_tarball(built, tmp_path):
    shutil.copy(REPO / "execution-environment.yml", tmp_path / "execution-environment.yml")
    (tmp_path / "context-files").mkdir()
    shutil.copy(built["tarball"], tmp_path / "context-files" / "byoc-certificates.tar.gz")
    run([str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context",
         "--output-filename", "Containerfile"], tmp_path)
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    names = [c["name"] for c in requirements["collections"]]
    assert names == ["/build/byoc/byoc-certificates.tar.gz"], names
    assert (context / "_build" / "byoc" / "byoc-certificates.tar.gz").read_bytes() == built["tarball"].read_bytes()
    assert "COPY _build /build" in containerfile  # the galaxy stage sees /build/byoc/...
    assert "ansible-galaxy collection install" in containerfile
    assert "introspect" in containerfile  # the builder stage reads meta/execution-environment.yml of what it installed
    assert re.search(r"ANSIBLE_INSTALL_REFS=\"ansible-core[^\"]* ansible-runner", containerfile), containerfile[:800]
