"""The Lambda artifact: sources without the local runtime, SQL templates inside the package."""

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
import importlib, json, snapcdc, snapcdc.sqlrender, snapcdc.queries
from snapcdc.handlers import HANDLERS
for name in HANDLERS:
    importlib.import_module(f"snapcdc.handlers.{name}")
try:
    import snapcdc.local
    local = True
except ImportError:
    local = False
print(json.dumps({
    "package": snapcdc.__file__,
    "sql_dir": str(snapcdc.sqlrender.sql_dir()),
    "local": local,
    "sql": snapcdc.queries.create_database("snapcdc_x_tenant"),
}))
"""


def test_artifact_holds_the_package_without_local_and_with_sql(tmp_path):
    out = build_lambda.build(tmp_path / "lambda", with_dependencies=False)

    package = out / "snapcdc"
    assert (package / "handlers" / "consumer.py").is_file()
    assert not (package / "local").exists() and not (package / "__main__.py").exists()
    assert sorted(p.name for p in (package / "sql").iterdir()) == sorted(
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
    assert seen["sql_dir"] == str(package / "sql")
    assert seen["local"] is False
    assert seen["sql"].startswith("CREATE DATABASE IF NOT EXISTS `snapcdc_x_tenant`")
