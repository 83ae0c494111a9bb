"""The Dockerfile: hadolint-clean, and the structure the deployment relies on."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy._dockerfile import Stage, ignored, parse, read_dockerignore
from tests.deploy._manifests import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cmake", "gfortran", "cargo")


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE)


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool("hadolint")), "--no-color", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_hadolint_passes() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_the_mistakes_it_guards_against(tmp_path: Path) -> None:
    """The lint step has teeth at the threshold used above (no config file softens it)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\n"
        "RUN apt-get update && apt-get install -y gcc\n"
        "RUN pip install gunicorn\n"
        "CMD gunicorn webapp.wsgi:app\n"
    )
    result = _hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3025"):
        assert rule in result.stdout, f"{rule} not reported:\n{result.stdout}"


def test_multi_stage_slim_python_at_least_the_required_version(stages: list[Stage]) -> None:
    """By default, the official slim image; every stage on the same BASE_IMAGE argument, so
    `make image-test` can swap in its Debian-packages base."""
    assert len(stages) >= 2
    assert {stage.declared for stage in stages} == {"${BASE_IMAGE}"}
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(x) for x in re.fullmatch(r">=(\d+)\.(\d+)", required).groups())  # type: ignore[union-attr]
    for stage in stages:
        match = re.fullmatch(r"python:(\d+)\.(\d+)-slim(-\w+)?", stage.base)
        assert match, f"line {stage.line}: base {stage.base} is not a pinned slim Python tag"
        assert (int(match.group(1)), int(match.group(2))) >= minimum


def test_build_calls_python3_which_both_bases_have(stages: list[Stage]) -> None:
    """Debian's interpreter is only ``python3`` (no ``python``, no pip of its own); the
    official image has both. Build steps call ``python3`` or the venvs' own interpreters."""
    for stage in stages:
        for run in stage.all("RUN"):
            calls = re.findall(r"(?:^|&&|;|\|\|)\s*(\S*python\S*)", run.args)
            for call in calls:
                assert call == "python3" or call.startswith("/opt/"), f"line {run.line}: {call}"


def test_wheels_are_built_before_the_runtime_stage_which_has_no_compiler(
    stages: list[Stage], final: Stage
) -> None:
    build_runs = " ".join(r.args for s in stages[:-1] for r in s.all("RUN"))
    assert "pip wheel" in build_runs
    final_runs = " ".join(r.args for r in final.all("RUN"))
    assert "pip wheel" not in final_runs and "pip install" not in final_runs
    installed = re.findall(r"apt-get install\s+([^&|;]+)", final_runs)
    packages = {p.split("=")[0] for group in installed for p in group.split() if p[0] != "-"}
    assert packages == {"tini"}, packages
    assert not packages.intersection(COMPILERS)
    copied_from_build = [c for c in final.all("COPY") if c.flags().get("from") == stages[0].name]
    assert any(c.operands()[0] == "/opt/venv" for c in copied_from_build)


def test_runs_as_a_fixed_non_root_uid_with_its_own_group(final: Stage) -> None:
    user = final.last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) >= 10000, "numeric uid (runAsNonRoot can verify it)"
    assert gid.isdigit() and int(gid) >= 10000
    setup = " ".join(r.args for r in final.all("RUN"))
    assert f"--gid {gid}" in setup and f"--uid {uid}" in setup


def test_one_image_two_commands_in_exec_form_under_an_init(final: Stage) -> None:
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint is not None and cmd is not None
    assert entrypoint.exec_form() == ["tini", "--"]
    assert cmd.exec_form() == ["gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"]
    assert (ROOT / "gunicorn.conf.py").is_file()
    # The daemon command is given by the deployment (see test_manifests) and the README.
    readme = (ROOT / "README.md").read_text()
    assert "python -m cache_daemon" in readme


def test_healthcheck_and_labels(final: Stage) -> None:
    healthcheck = final.last("HEALTHCHECK")
    assert healthcheck is not None
    command = healthcheck.exec_form()
    assert command[:2] == ["python", "/app/deploy/healthcheck.py"]
    labels = " ".join(i.args for i in final.all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_listens_where_the_environment_says(final: Stage) -> None:
    env = final.env({"PATH": "/usr/local/bin:/usr/bin:/bin"})
    expose = final.last("EXPOSE")
    assert expose is not None and expose.args == env["PORT"]
    assert env["WEB_HOST"] == "0.0.0.0"
    assert env["SHM_DIR"].startswith("/dev/shm/")
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_dockerignore_admits_every_copy_source_and_nothing_private(stages: list[Stage]) -> None:
    rules = read_dockerignore(ROOT / ".dockerignore")
    sources: list[Path] = []
    for stage in stages:
        for copy in stage.all("COPY"):
            if "from" in copy.flags():
                continue
            sources.extend(ROOT / src for src in copy.operands()[:-1])
    assert sources
    for source in sources:
        assert source.exists(), f"COPY source {source} does not exist"
        files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
        for path in files:
            relative = path.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert not ignored(relative, rules), f"{relative} is copied but .dockerignore drops it"
    for private in (".git/HEAD", ".venv/bin/python", "tests/conftest.py", ".run/x", "bench/x.py"):
        assert ignored(private, rules), f"{private} would be sent to the build context"
