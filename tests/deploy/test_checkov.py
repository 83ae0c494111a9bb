"""checkov finds no failed check in the Dockerfile and the rendered manifests, and every skip
carries its reason.

checkov lives in ``.venv-tools`` (see the Makefile: its exact pins of shared libraries would
downgrade the dev set). ``make test`` builds that venv first (``make tools``); the test never
builds it, and is skipped with that reason when it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.deploy._manifests import ROOT, tool

# slow: about 10 s (kept out of `make test-fast`).
pytestmark = pytest.mark.slow

CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
# --skip-download: never contact the vendor's platform (severities and links are not needed).
SCANS = {
    "dockerfile": ["--framework", "dockerfile", "-f", "Dockerfile"],
    "kustomize": ["--framework", "kustomize", "secrets", "-d", "deploy/k8s"],
}


@pytest.fixture(scope="module")
def reports() -> dict[str, list[dict[str, Any]]]:
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV} not found: `make tools` builds it (`make test` does first)")
    # checkov's kustomize framework renders with the kubectl from the dev venv.
    env = {**os.environ, "PATH": f"{tool('kubectl').parent}{os.pathsep}{os.environ['PATH']}"}
    procs = {
        name: subprocess.Popen(
            [str(CHECKOV), "--skip-download", "--output", "json", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in SCANS.items()
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert stdout.strip(), f"checkov {name} printed nothing: {stderr[-2000:]}"
        parsed = json.loads(stdout)
        out[name] = parsed if isinstance(parsed, list) else [parsed]
    return out


@pytest.mark.parametrize("scan", sorted(SCANS))
def test_no_failed_check_and_every_skip_has_a_reason(
    reports: dict[str, list[dict[str, Any]]], scan: str
) -> None:
    by_type = {r["check_type"]: r for r in reports[scan]}
    primary = by_type.get(scan)
    assert primary is not None, f"checkov ran no {scan} scan (found {sorted(by_type)})"
    assert primary["summary"]["passed"] > 20, "the scan checked next to nothing"
    assert primary["summary"]["parsing_errors"] == 0
    for report in by_type.values():
        failed = [
            f"{c['check_id']} {c['check_name']} ({c['resource']}, {c['file_path']})"
            for c in report["results"]["failed_checks"]
        ]
        assert not failed, "\n".join(failed)
        for skipped in report["results"]["skipped_checks"]:
            reason = (skipped["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) > 20, f"{skipped['check_id']} is skipped without a reason"
