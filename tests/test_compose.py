"""The distributed mode's files: docker-compose.yaml, the images, scripts/compose_secrets.py.

No Docker engine is needed (or used): the compose file is validated against the Compose
Specification's JSON schema offline, read as YAML and interpolated here the way compose does, and
checked against what the code actually reads (connection ids, SB87_* settings, modules).
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sb87.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
HOSTNET_OVERRIDE = ROOT / "docker-compose.hostnet.yaml"
AIRFLOW_DOCKERFILE = ROOT / "docker" / "airflow" / "Dockerfile"
BACKUP_HOST_DOCKERFILE = ROOT / "docker" / "backup-host" / "Dockerfile"
BACKUP_HOST_ENTRYPOINT = ROOT / "docker" / "backup-host" / "entrypoint.sh"
SERVER_DOCKERFILE = ROOT / "docker" / "deposited-server" / "Dockerfile"
PROVISION_BACKUP_HOST = ROOT / "scripts" / "provision" / "backup-host.sh"
PROVISION_SERVER = ROOT / "scripts" / "provision" / "deposited-server.sh"
CONSTRAINTS = ROOT / "constraints" / "airflow-3.3.2-py3.11.txt"
INVENTORY = ROOT / "config" / "inventory.json"
SAMPLE_REQUEST = ROOT / "config" / "sample_request.json"
SECRETS_SCRIPT = ROOT / "scripts" / "compose_secrets.py"
PLUGINS = ROOT / "plugins"

AIRFLOW_SERVICES = (
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
)
DEMO_SERVICES = ("backup-host", "fileserver01", "hr-db-01", "mailcatcher")
ALL_SERVICES = ("postgres", "redis", "airflow-init", *AIRFLOW_SERVICES, *DEMO_SERVICES)

#: `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`; `$$` escapes
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_variables() -> dict[str, set[str]]:
    """Every variable the compose file reads, by name, with the operators it is read with ('' = plain)."""
    found: dict[str, set[str]] = {}
    for match in VARIABLE.finditer(COMPOSE_FILE.read_text(encoding="utf-8")):
        if match["name"]:
            found.setdefault(match["name"], set()).add(match["op"] or "")
    return found


def required_variables() -> set[str]:
    return {name for name, ops in compose_variables().items() if ops & {":?", "?"}}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of every string in a parsed compose file (after YAML parsing, as compose does)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (op and op.startswith(":") and current == "")
        if op in (":?", "?") and missing:
            raise KeyError(f"required variable {name} is not set: {arg}")
        if op in (":-", "-") and missing:
            return arg
        return current or ""

    return VARIABLE.sub(one, value)


def read_env_file(path: Path) -> dict[str, str]:
    """A `.env` as compose reads it, for the forms compose_secrets.py writes (NAME='literal')."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, raw = line.partition("=")
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            raw = raw[1:-1]
        values[name.strip()] = raw
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    return {name: {"condition": "service_started"} for name in deps} if isinstance(deps, list) else deps


def code_connection_ids() -> set[str]:
    """Connection ids the sb87 package uses: the string defaults of every `..._conn_id` / `..._CONN_ID`."""
    pattern = re.compile(r"\b\w*(?:conn_id|CONN_ID)\s*(?::\s*str\s*)?=\s*[\"']([A-Za-z0-9_]+)[\"']")
    ids = set()
    for source in (PLUGINS / "sb87").rglob("*.py"):
        ids.update(pattern.findall(source.read_text(encoding="utf-8")))
    return ids


def settings_variables() -> set[str]:
    """The `SB87_*` environment variables plugins/sb87/settings.py reads, and the deployment's own
    one-shot command (the project database's migration, run by `airflow-init`)."""
    source = "".join((PLUGINS / "sb87" / name).read_text(encoding="utf-8")
                     for name in ("settings.py", "records/schema.py"))
    return {f"SB87_{name.upper()}" for name in Settings.__dataclass_fields__} | set(
        re.findall(r"[\"'](SB87_[A-Z0-9_]+)[\"']", source)
    )


def module_file(dotted: str) -> Path:
    """Where the Airflow containers find a module: the image installs plugins/sb87 editable (Dockerfile)."""
    return PLUGINS.joinpath(*dotted.split(".")).with_suffix(".py")


def provisioned_packages(script: Path) -> set[str]:
    """The `PACKAGES=(…)` line of a provisioning script."""
    found = re.search(r"^PACKAGES=\(([^)]*)\)", script.read_text(encoding="utf-8"), re.M)
    assert found, f"{script.relative_to(ROOT)} has no PACKAGES=(...) line"
    return set(found[1].split())


def apt_installed(dockerfile: Path) -> set[str]:
    """Every package a Dockerfile's `apt-get install` lines name (continuation lines joined)."""
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    packages: set[str] = set()
    for command in re.findall(r"apt-get install ([^&;\n]*)", text):
        packages |= {word for word in command.split() if not word.startswith("-")}
    return packages


def parsed_requirements(path: Path) -> dict[str, str]:
    """`name: version` of every `name==version` line (names normalised as pip does)."""
    return {re.sub(r"[-_.]+", "-", name).lower(): version
            for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#;]+)", path.read_text(encoding="utf-8"), re.M)}


def run_secrets_script(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SECRETS_SCRIPT), "--dir", str(target), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where scripts/compose_secrets.py has written `.env` and `secrets/`."""
    target = tmp_path_factory.mktemp("compose")
    result = run_secrets_script(target)
    assert result.returncode == 0, result.stderr
    return target


# ------------------------------------------------------------------------------------ the compose file


@pytest.mark.parametrize("path", [COMPOSE_FILE, HOSTNET_OVERRIDE], ids=lambda p: p.name)
def test_compose_file_validates_against_the_compose_specification(path: Path) -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    assert checker.exists(), "check-jsonschema is missing: it is pinned in requirements-dev.txt (make setup)"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_of_the_distributed_mode_exists(compose: dict) -> None:
    assert set(ALL_SERVICES) <= set(compose["services"])


def test_long_running_services_have_health_checks(compose: dict) -> None:
    for name in ("postgres", "redis", *AIRFLOW_SERVICES, *DEMO_SERVICES):
        check = compose["services"][name].get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"


def test_airflow_services_wait_for_the_databases_and_airflow_init(compose: dict) -> None:
    services = compose["services"]
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        deps = depends_on(services[name])
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    for name in AIRFLOW_SERVICES:
        assert depends_on(services[name])["airflow-init"]["condition"] == "service_completed_successfully", name


def test_the_worker_scales(compose: dict) -> None:
    worker = compose["services"]["airflow-worker"]
    assert "container_name" not in worker
    assert not worker.get("ports"), "a fixed host port would stop `--scale airflow-worker=N`"
    assert worker["command"] == "celery worker"
    ping = " ".join(worker["healthcheck"]["test"])
    assert "celery_executor.app inspect ping" in ping and "celery@$${HOSTNAME}" in ping


def test_demo_services_are_under_the_demo_profile_and_the_rest_under_none(compose: dict) -> None:
    for name, service in compose["services"].items():
        if name in DEMO_SERVICES:
            assert service.get("profiles") == ["demo"], name
        else:
            assert not service.get("profiles"), f"{name} would not start without a profile"


def test_airflow_runs_celery_on_postgres_and_redis(compose: dict) -> None:
    env = environment(compose["x-airflow-common"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert "PYTHONPATH" not in env, "the image installs the sb87 package; nothing edits the import path"
    # all processes share the keys; they come from .env, never from this file
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), key


def test_project_folders_are_mounted_read_only_and_state_lives_in_volumes(compose: dict) -> None:
    volumes = compose["x-airflow-common"]["volumes"]
    for folder in ("dags", "plugins", "include", "config"):
        assert f"./{folder}:/opt/airflow/{folder}:ro" in volumes
        assert (ROOT / folder).is_dir()
    named = {v.split(":")[1]: v.split(":")[0] for v in volumes if not v.startswith(".")}
    assert set(named) >= {"/opt/airflow/logs", "/opt/airflow/documents"}
    assert set(named.values()) <= set(compose["volumes"])
    env = environment(compose["x-airflow-common"])
    assert env["SB87_DOCUMENTS_DIR"] in named
    assert (ROOT / env["SB87_CONFIG"].removeprefix("/opt/airflow/")).is_file()


def test_the_project_database_is_created_beside_the_metadata_database(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    mounts = [v for v in postgres["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert len(mounts) == 1
    script = ROOT / mounts[0].split(":")[0]
    assert re.search(r"^CREATE DATABASE sb87;", script.read_text(encoding="utf-8"), re.MULTILINE)
    db = environment(compose["x-airflow-common"])["AIRFLOW_CONN_SB87_DB"]
    assert '"schema":"sb87"' in db and '"host":"postgres"' in db


def test_secrets_are_compose_secrets_from_the_secrets_folder(compose: dict) -> None:
    for name, secret in compose["secrets"].items():
        assert secret["file"] == f"./secrets/{Path(secret['file']).name}", name
    assert compose["services"]["airflow-worker"]["secrets"] == ["sb87_ssh_client_key"]
    assert set(compose["services"]["backup-host"]["secrets"]) == {
        "sb87_ssh_host_key", "sb87_ssh_client_key_pub", "sb87_restic_password",
    }
    assert set(compose["services"]["fileserver01"]["secrets"]) == {"sb87_server_host_key", "sb87_ssh_client_key_pub"}
    # nothing secret is written into the compose file itself
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "BEGIN OPENSSH PRIVATE KEY" not in text and "ssh-ed25519 AAAA" not in text


# --------------------------------------------------------------------------- consistency with the code


def test_the_image_installs_requirements_txt_and_pins_the_same_airflow() -> None:
    dockerfile = AIRFLOW_DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM apache/airflow:(?P<airflow>[0-9.]+)-python(?P<python>[0-9.]+)\s*$", dockerfile, re.M)
    assert base, "the image must be built FROM apache/airflow:<version>-python<version>"
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    )
    assert base["airflow"] == pins["apache-airflow"], "Dockerfile and requirements.txt pin different Airflow versions"
    target = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["target-version"]
    assert target == "py" + base["python"].replace(".", "")
    copied = re.search(r"^COPY .*\brequirements\.txt\s+(\S+)\s*$", dockerfile, re.M)
    assert copied, "the Dockerfile must COPY requirements.txt"
    install = re.search(r"^RUN pip install (.*)$", dockerfile, re.M)
    assert install and "--no-cache-dir" in install[1] and f"-r {copied[1]}" in install[1]
    # The project's package, editable at the mounted plugins path, so no container edits PYTHONPATH.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert project["package-dir"]["sb87"] == "plugins/sb87"
    assert re.search(r"^COPY .*\bplugins/sb87 /opt/airflow/plugins/sb87\s*$", dockerfile, re.M)
    assert re.search(r"^RUN pip install .*--no-deps -e /opt/airflow\s*$", dockerfile, re.M)


def test_the_compose_file_builds_that_image(compose: dict) -> None:
    build = compose["x-airflow-common"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == AIRFLOW_DOCKERFILE
    for service, dockerfile in (("backup-host", BACKUP_HOST_DOCKERFILE), ("fileserver01", SERVER_DOCKERFILE)):
        built = compose["services"][service]["build"]
        assert (ROOT / built["context"] / built["dockerfile"]).resolve() == dockerfile
        # the provisioning script is copied from the repository root, the build's context
        for source in re.findall(r"^COPY (\S+) ", dockerfile.read_text(encoding="utf-8"), re.M):
            assert (ROOT / built["context"] / source).exists(), f"{dockerfile}: COPY {source}"


def test_the_image_adds_pyicus_build_packages_as_root_then_installs_as_airflow() -> None:
    """PyICU has no wheel: its sdist needs a C++ compiler, pkg-config and ICU's headers (as setup.sh)."""
    dockerfile = AIRFLOW_DOCKERFILE.read_text(encoding="utf-8")
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    build_packages = {"g++", "pkg-config", "libicu-dev"}
    assert build_packages <= set(re.search(r"APT_PACKAGES=\(([^)]*)\)", setup, re.S)[1].split())
    assert build_packages <= apt_installed(AIRFLOW_DOCKERFILE)
    users = [(m.start(), m[1]) for m in re.finditer(r"^USER (\w+)\s*$", dockerfile, re.M)]

    def user_at(offset: int) -> str:
        return [name for start, name in users if start < offset][-1]

    assert user_at(dockerfile.index("apt-get install")) == "root"
    assert user_at(dockerfile.index("RUN pip install")) == "airflow", "pip runs as airflow (Airflow's image docs)"


def test_the_image_installs_under_the_vendored_constraints_and_checks_them() -> None:
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    named = re.search(r"^-c (\S+)", requirements, re.M)
    assert named and (ROOT / named[1]).resolve() == CONSTRAINTS
    dockerfile = AIRFLOW_DOCKERFILE.read_text(encoding="utf-8")
    copied_requirements = re.search(r"^COPY .*\brequirements\.txt\s+(\S+)\s*$", dockerfile, re.M)[1]
    copied_constraints = re.search(r"^COPY .*\bconstraints\s+(\S+)\s*$", dockerfile, re.M)
    # `-c` in a requirements file is read relative to that file, as pip and uv both do
    assert copied_constraints
    assert Path(copied_constraints[1]) == Path(copied_requirements).parent / Path(named[1]).parent
    assert re.search(r"&& pip check\s*$", dockerfile, re.M), "the build must end with `pip check`"


def test_the_constraints_agree_with_every_pin_of_requirements_txt() -> None:
    constraints = parsed_requirements(CONSTRAINTS)
    pins = parsed_requirements(ROOT / "requirements.txt")
    assert pins, "requirements.txt pins nothing?"
    disagree = {name: (version, constraints.get(name)) for name, version in pins.items()
                if constraints.get(name) != version}
    assert not disagree, f"requirements.txt pin vs constraints: {disagree}"
    assert "VENDORED" in CONSTRAINTS.read_text(encoding="utf-8").split("\n\n")[0], "its header says how it was made"


def test_every_module_the_package_imports_is_installed_by_requirements_txt() -> None:
    """The image installs requirements.txt only (requirements-dev.txt is the test machine's): a module
    the package imports, even inside a function, that only a dev pin brings fails in production."""
    from importlib.metadata import packages_distributions

    providers = packages_distributions()
    installed = set(parsed_requirements(CONSTRAINTS))  # requirements.txt's closure, as tested
    missing = {}
    for source in (PLUGINS / "sb87").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"sb87"}:
                dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(top, [top])}
                if not dists & installed:
                    missing.setdefault(top, set()).add(str(source.relative_to(ROOT)))
    assert not missing, f"imported by plugins/sb87 but not installed by requirements.txt: {missing}"


@pytest.mark.parametrize(("script", "dockerfile"), [
    (PROVISION_BACKUP_HOST, BACKUP_HOST_DOCKERFILE), (PROVISION_SERVER, SERVER_DOCKERFILE),
], ids=["backup-host", "deposited-server"])
def test_each_demo_image_installs_what_its_provisioning_script_names(script: Path, dockerfile: Path) -> None:
    packages = provisioned_packages(script)
    assert packages == apt_installed(dockerfile), f"{dockerfile.relative_to(ROOT)} and {script.relative_to(ROOT)}"
    # and the image then runs that script, so the login, folders and sshd rules are the same too
    assert re.search(rf"bash /opt/sb87/{script.relative_to(ROOT)} --no-packages", dockerfile.read_text("utf-8"))
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_backup_host_has_every_tool_its_readiness_and_scripts_require() -> None:
    packages = provisioned_packages(PROVISION_BACKUP_HOST)
    readiness = (ROOT / "include" / "templates" / "backup" / "restic" / "readiness.sh.j2").read_text("utf-8")
    for tool in re.findall(r"command -v (\w+)", readiness):
        assert tool in packages, f"readiness needs {tool}"
    assert {"restic", "openssh-server", "cron", "util-linux", "zstd", "zip"} <= packages
    server = provisioned_packages(PROVISION_SERVER)
    client = (ROOT / "include" / "templates" / "backup" / "restic" / "client_readiness.sh.j2").read_text("utf-8")
    assert "pgrep" in client and "procps" in server
    assert {"restic", "openssh-client", "cron", "util-linux"} <= server


def test_sshd_of_the_backup_host_reads_the_push_keys_file_sb87_may_rewrite() -> None:
    script = PROVISION_BACKUP_HOST.read_text(encoding="utf-8")
    keys = Path(Settings().push_keys_file)
    authorized = re.search(r"^\s*AuthorizedKeysFile (.*)$", script, re.M)
    assert authorized, "the provisioning script sets no AuthorizedKeysFile for the login"
    folder = re.sub(r"\$ETC\b", str(keys.parent), authorized[1])
    assert str(keys) in folder.split(), authorized[1]
    # authorize_push replaces the file through a temporary file and a rename in its folder
    etc = re.search(r'^ETC=(\S+)$', script, re.M)[1]
    assert Path(etc) == keys.parent
    assert re.search(r'install -d -o "\$LOGIN" -g "\$LOGIN" -m 700 "\$ETC"', script)
    entrypoint = BACKUP_HOST_ENTRYPOINT.read_text(encoding="utf-8")
    assert f"chown sb87:sb87 {keys.parent}" in entrypoint


def test_the_backup_hosts_cron_sync_keeps_every_line_the_pipeline_writes_and_runs_it_as_sb87() -> None:
    from sb87.backup.datapath import cron_file_text

    written = cron_file_text("0 4 * * *", "root", ["/bin/sh", "/srv/sb87/restic/x.policy/retention.sh"],
                             "/srv/sb87/restic/x.policy/retention.log", "retention of x")
    hostile = written + "@reboot root rm -rf /\nBASH_ENV=/tmp/x\n0 1 * * * nobody id\n"
    entrypoint = BACKUP_HOST_ENTRYPOINT.read_text(encoding="utf-8")
    definitions = "\n".join(re.findall(r"^(?:CRON_ENTRY|AS_SB87)=.*$", entrypoint, re.M))
    result = subprocess.run(
        ["bash", "-c", definitions + '\nprintf "%s" "$1" | grep -E "$CRON_ENTRY" | sed -E "$AS_SB87"', "_", hostile],
        capture_output=True, text=True, timeout=30, check=True,
    )
    installed = result.stdout.splitlines()
    expected = written.replace(" root ", " sb87 ").splitlines()
    assert installed == expected
    assert any(line.startswith("SHELL=/bin/sh") for line in installed)
    assert 'MAILTO=""' in installed and any(line.startswith("PATH=") for line in installed)


def test_the_backup_hosts_cron_sync_finds_its_tools_under_crons_path(tmp_path: Path) -> None:
    """cron starts `sync-cron` with PATH=/usr/bin:/bin; runuser lives in /usr/sbin."""
    entrypoint = BACKUP_HOST_ENTRYPOINT.read_text(encoding="utf-8")
    path = re.search(r"^export PATH=(\S+)$", entrypoint, re.M)
    assert path and entrypoint.index(path[0]) < entrypoint.index("sync_cron()")
    assert {"/usr/sbin", "/usr/bin", "/sbin", "/bin"} <= set(path[1].split(":"))


def test_the_cron_files_the_sync_manages_are_the_ones_the_policies_write() -> None:
    backends = (PLUGINS / "sb87" / "backup" / "backends.py").read_text(encoding="utf-8")
    assert '/sb87-retention-{sid}"' in backends
    entrypoint = BACKUP_HOST_ENTRYPOINT.read_text(encoding="utf-8")
    assert '"$CRON_SRC"/sb87-retention-*' in entrypoint and '"$CRON_DST"/sb87-retention-*' in entrypoint
    # root's own sync job is outside that name, or the sync would remove it
    assert "/etc/cron.d/backup-host-sync" in PROVISION_BACKUP_HOST.read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    assert "sb87-retention-<id>" in guide and "sb87-<host>" not in guide


def test_every_server_of_the_demo_inventory_has_a_demo_service(compose: dict) -> None:
    servers = json.loads(INVENTORY.read_text(encoding="utf-8"))["servers"]
    for server in servers:
        service = compose["services"][server["hostname"]]
        assert service["hostname"] == server["hostname"]
        assert service["image"] == compose["services"]["fileserver01"]["image"]
        assert set(service["secrets"]) == {"sb87_server_host_key", "sb87_ssh_client_key_pub"}


def test_the_demo_server_holds_the_sample_requests_folders_under_its_data_root() -> None:
    sample = json.loads(SAMPLE_REQUEST.read_text(encoding="utf-8"))
    inventory = {s["hostname"]: s for s in json.loads(INVENTORY.read_text(encoding="utf-8"))["servers"]}
    dockerfile = SERVER_DOCKERFILE.read_text(encoding="utf-8")
    for server in sample["servers"]:
        registered = inventory[server["hostname"]]
        assert registered["address"] == server["address"]
        for path in server["paths"]:
            assert any(path.startswith(root + "/") for root in registered["data_roots"])
            assert f'install -d -m 750 "{path}"' in dockerfile, path
        for root in registered["data_roots"]:
            assert f"--data-root {root}" in dockerfile


def test_every_image_has_a_tag(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = interpolate(service.get("image", ""), {}) or interpolate(compose["x-airflow-common"]["image"], {})
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image!r} has no tag"


def test_the_api_server_knows_it_is_behind_a_tls_proxy(compose: dict) -> None:
    assert "--proxy-headers" in compose["services"]["airflow-apiserver"]["command"]
    assert "AIRFLOW__API__BASE_URL" in environment(compose["x-airflow-common"])


def test_the_guide_names_every_volume(compose: dict) -> None:
    guide = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    for volume in compose["volumes"]:
        assert f"`{compose['name']}_{volume}`" in guide, volume


def test_every_connection_in_compose_is_one_the_code_uses_and_back(compose: dict) -> None:
    used = code_connection_ids()
    assert {"sb87_backup_host", "smtp_default", "sb87_airflow_api", "sb87_db"} <= used
    provided = set()
    for service in [compose["x-airflow-common"], *compose["services"].values()]:
        provided |= {k.removeprefix("AIRFLOW_CONN_").lower() for k in environment(service)
                     if k.startswith("AIRFLOW_CONN_")}
    assert provided <= used, f"connections no code reads: {provided - used}"
    assert used <= provided, f"connections the code reads but compose does not set: {used - provided}"


def test_every_sb87_variable_in_compose_is_a_setting() -> None:
    known = settings_variables()
    assert "SB87_CONFIG" in known and "SB87_BACKUP_CONN_ID" in known
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in [("x-airflow-common", compose["x-airflow-common"]), *compose["services"].items()]:
        unknown = {k for k in environment(service) if k.startswith("SB87_")} - known
        assert not unknown, f"{name} sets {unknown}, which plugins/sb87/settings.py does not read"


def test_the_backup_pool_created_by_airflow_init_is_the_settings_pool(compose: dict) -> None:
    script = compose["services"]["airflow-init"]["command"][-1]
    assert "airflow db migrate" in script
    pool = re.search(r"airflow pools set (\S+) (\S+)", script)
    assert pool and pool[1] == Settings().backup_pool
    assert interpolate(pool[2], {}) == "2"


def test_the_modules_airflow_init_runs_exist() -> None:
    script = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]["airflow-init"]["command"][-1]
    modules = re.findall(r"python -m ([\w.]+)", script)
    assert modules == ["sb87.people.accounts", "sb87.records.schema"]
    for module in modules:
        assert module_file(module).is_file(), f"airflow-init runs {module}, which is not under plugins/"


def test_the_auth_manager_is_a_class_under_plugins(compose: dict) -> None:
    path = environment(compose["x-airflow-common"])["AIRFLOW__CORE__AUTH_MANAGER"]
    module, _, cls = path.rpartition(".")
    source = module_file(module)
    assert source.is_file(), f"the auth manager {path} needs {source.relative_to(ROOT)}"
    classes = {node.name for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
               if isinstance(node, ast.ClassDef)}
    assert cls in classes


# ------------------------------------------------------------------------------- compose_secrets.py


def test_compose_secrets_writes_private_files(generated: Path) -> None:
    secrets_dir = generated / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((secrets_dir / "servers").stat().st_mode) == 0o700
    written = [generated / ".env", *(p for p in secrets_dir.iterdir() if p.is_file())]
    assert len(written) == 9
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_every_connection_the_demo_inventory_names_is_given_to_airflow(compose: dict, generated: Path) -> None:
    """Each `ssh_conn_id` of config/inventory.json is a line of secrets/servers.env, which every Airflow
    container loads (env_file), reaching the demo server with a key the worker has."""
    common = compose["x-airflow-common"]
    assert "./secrets/servers.env" in common["env_file"]
    connections = read_env_file(generated / "secrets" / "servers.env")
    server_key = (generated / "secrets" / "sb87_server_host_key.pub").read_text(encoding="ascii").split()[:2]
    worker = compose["services"]["airflow-worker"]
    worker_files = {f"/run/secrets/{name}" for name in worker["secrets"]}
    for server in json.loads(INVENTORY.read_text(encoding="utf-8"))["servers"]:
        conn = json.loads(connections[f"AIRFLOW_CONN_{server['ssh_conn_id'].upper()}"])
        assert conn["conn_type"] == "ssh" and conn["login"] == "root"
        assert conn["host"] in compose["services"], "the demo service of that server"
        assert conn["extra"]["host_key"] == " ".join(server_key)
        assert conn["extra"]["no_host_key_check"] is False
        assert conn["extra"]["key_file"] in worker_files
    # a real server's own key file goes in ./secrets/servers/, which the worker mounts
    assert "./secrets/servers:/opt/airflow/server-keys:ro" in worker["volumes"]
    assert set(common["volumes"]) <= set(worker["volumes"])


def test_the_secret_files_are_the_ones_compose_mounts(compose: dict, generated: Path) -> None:
    for name, secret in compose["secrets"].items():
        path = generated / secret["file"]
        assert path.is_file() and path.stat().st_size > 0, name


def test_the_backup_host_key_is_pinned_with_its_type(compose: dict, generated: Path) -> None:
    env = read_env_file(generated / ".env")
    conn = json.loads(env["AIRFLOW_CONN_SB87_BACKUP_HOST"])
    kind, b64 = (generated / "secrets" / "sb87_ssh_host_key.pub").read_text(encoding="ascii").split()[:2]
    assert kind == "ssh-ed25519"
    assert conn["extra"]["host_key"] == f"{kind} {b64}"
    assert conn["extra"]["no_host_key_check"] is False
    assert conn["conn_type"] == "ssh" and conn["host"] == "backup-host" and conn["port"] == 22
    assert conn["login"] == "sb87"
    # the key file is the secret the worker mounts, and the host is the demo service
    key_secret = Path(conn["extra"]["key_file"])
    assert key_secret.parent == Path("/run/secrets")
    assert key_secret.name in compose["services"]["airflow-worker"]["secrets"]
    assert conn["host"] in compose["services"]


def test_the_generated_env_satisfies_every_required_variable(compose: dict, generated: Path) -> None:
    env = read_env_file(generated / ".env")
    required = required_variables()
    assert {"POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_CONN_SB87_BACKUP_HOST"} <= required
    missing = {name for name in required if not env.get(name)}
    assert not missing, f".env lacks {missing}"
    # interpolated as compose would, every connection is a JSON object of a known type
    resolved = interpolate(compose, env)
    common = environment(resolved["x-airflow-common"])
    for key, value in common.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn = json.loads(value)
            assert conn["conn_type"] in {"ssh", "smtp", "http", "postgres"}, key
    # the pipeline logs in to its own database as sb87_app, which airflow-init creates with this password
    project_db = json.loads(common["AIRFLOW_CONN_SB87_DB"])
    assert (project_db["login"], project_db["password"]) == ("sb87_app", env["SB87_DB_APP_PASSWORD"])
    assert env["SB87_DB_APP_PASSWORD"] != env["POSTGRES_PASSWORD"]
    init = environment(resolved["services"]["airflow-init"])
    assert init["SB87_DB_APP_PASSWORD"] == env["SB87_DB_APP_PASSWORD"]
    assert env["POSTGRES_PASSWORD"] in init["SB87_DB_OWNER_URL"]
    api = json.loads(common["AIRFLOW_CONN_SB87_AIRFLOW_API"])
    assert (api["host"], api["port"], api["login"]) == ("airflow-apiserver", 8080, "sb87_service")
    assert api["password"] == env["SERVICE_ACCOUNT_PASSWORD"]
    assert env["POSTGRES_PASSWORD"] in common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert json.loads(common["AIRFLOW_CONN_SMTP_DEFAULT"])["host"] in resolved["services"]


def test_the_generated_airflow_keys_are_valid(generated: Path) -> None:
    from cryptography.fernet import Fernet

    env = read_env_file(generated / ".env")
    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # raises on a malformed key
    assert len(env["AIRFLOW_JWT_SECRET"]) >= 32 and len(env["AIRFLOW_API_SECRET_KEY"]) >= 32
    assert len({env["AIRFLOW_JWT_SECRET"], env["AIRFLOW_API_SECRET_KEY"], env["POSTGRES_PASSWORD"]}) == 3
    assert int(env["AIRFLOW_UID"]) == (os.getuid() or 50000)


def test_a_second_run_refuses_to_overwrite(generated: Path) -> None:
    before = {p: p.read_bytes() for p in [generated / ".env", *(generated / "secrets").iterdir()] if p.is_file()}
    result = run_secrets_script(generated)
    assert result.returncode != 0
    assert "refusing to overwrite" in result.stderr
    assert {p: p.read_bytes() for p in before} == before


def test_force_replaces_the_secrets(tmp_path: Path) -> None:
    assert run_secrets_script(tmp_path).returncode == 0
    first = (tmp_path / "secrets" / "sb87_ssh_host_key.pub").read_text(encoding="ascii")
    assert run_secrets_script(tmp_path, "--force").returncode == 0
    second = (tmp_path / "secrets" / "sb87_ssh_host_key.pub").read_text(encoding="ascii")
    assert first != second
    conn = json.loads(read_env_file(tmp_path / ".env")["AIRFLOW_CONN_SB87_BACKUP_HOST"])
    assert conn["extra"]["host_key"] == " ".join(second.split()[:2])
    for path in [tmp_path / ".env", *(p for p in (tmp_path / "secrets").iterdir() if p.is_file())]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# ------------------------------------------------------------------------------ .env.example, .gitignore


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    example = read_env_file(ROOT / ".env.example")
    assert set(compose_variables()) <= set(example), "variables the compose file reads but .env.example omits"
    for name in required_variables() - {"AIRFLOW_UID"}:
        assert example[name] == "", f".env.example must leave {name} empty: compose_secrets.py writes it"


def test_secrets_and_env_are_git_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "secrets/" in ignored and ".env" in ignored
