"""The Lambda artifact: the deployed package as it is, SQL templates inside it, no local runtime."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import build_lambda  # noqa: E402

PROBE = """
import importlib, json, snapcdc, snapcdc.sql.render, snapcdc.sql.queries
from snapcdc.handlers import HANDLERS
for name in HANDLERS:
    importlib.import_module(f"snapcdc.handlers.{name}")
try:
    import snapcdc_local
    local = True
except ImportError:
    local = False
print(json.dumps({
    "package": snapcdc.__file__,
    "sql_dir": str(snapcdc.sql.render.sql_dir()),
    "local": local,
    "sql": snapcdc.sql.queries.create_database("snapcdc_x_tenant"),
}))
"""


def sources(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py") if "__pycache__" not in p.parts
    )


def test_artifact_holds_the_deployed_package_as_it_is_with_sql(tmp_path):
    out = build_lambda.build(tmp_path / "lambda", with_dependencies=False)

    package = out / "snapcdc"
    # Nothing excluded, nothing added: the package is what is deployed.
    assert sources(package) == sources(REPO / "functions" / "snapcdc")
    assert "handlers/consumer.py" in sources(package)
    assert not (out / "snapcdc_local").exists()
    templates = package / "sql" / "templates"
    assert not templates.is_symlink()
    assert sorted(p.name for p in templates.iterdir()) == sorted(
        p.name for p in (REPO / "sql").glob("*.sql")
    )
    assert not list(out.rglob("__pycache__"))

    # Import it the way the runtime would: the artifact first, no editable install (-S).
    site = sysconfig.get_paths()["purelib"]
    probe = subprocess.run(
        [sys.executable, "-S", "-c", PROBE],
        env={"PYTHONPATH": f"{out}:{site}", "POWERTOOLS_SERVICE_NAME": "snapcdc"},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(probe.stdout)
    assert seen["package"].startswith(str(out))
    assert seen["sql_dir"] == str(templates)
    assert seen["local"] is False
    assert seen["sql"].startswith("CREATE DATABASE IF NOT EXISTS `snapcdc_x_tenant`")
