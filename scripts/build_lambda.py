"""Build the Lambda artifact directory that ``aws cloudformation package`` zips and uploads.

Layout of ``build/lambda`` (the ``Code`` path in cfn.yaml)::

    snapcdc/            functions/snapcdc, as it is: the package holds exactly what is deployed
    snapcdc/sql/templates/   the Athena templates (the top-level sql/, linked into the package)
    jinja2/ markupsafe/ aws_lambda_powertools/ ...   arm64 / CPython 3.12 wheels

The dependencies are the ones uv.lock pins (``uv export``), as arm64 / CPython 3.12 wheels,
without byte code (the runtime compiles for its own Python) or console scripts. boto3 is not
bundled: the Lambda Python runtime provides it.

Usage: python scripts/build_lambda.py [OUT_DIR] [--skip-deps]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "functions" / "snapcdc"
# The Lambda runtime provides boto3 (and botocore, s3transfer): pruned from what is bundled.
RUNTIME_PROVIDED = ("boto3",)
# Byte code is the interpreter's cache, not source; symlinks (sql/templates) are copied as files.
BYTECODE = shutil.ignore_patterns("__pycache__", "*.pyc")


def uv() -> str:
    """The uv that `make` installed (UV), else one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise SystemExit("uv not found: run `make lambda` (it installs uv), or set UV=/path/to/uv")
    return found


def copy_sources(out: Path) -> None:
    shutil.copytree(PACKAGE, out / "snapcdc", ignore=BYTECODE)


def locked_requirements() -> str:
    """The handlers' dependencies exactly as uv.lock pins them (with hashes), less what the
    runtime provides: the lock is the one list of versions for every environment."""
    prune = [arg for name in RUNTIME_PROVIDED for arg in ("--prune", name)]
    return subprocess.run(
        [uv(), "export", "--frozen", "--no-dev", "--no-emit-project", *prune,
         "--format", "requirements-txt", "--no-header", "--project", str(REPO)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def install_dependencies(out: Path) -> None:
    requirements = out.parent / f"{out.name}-requirements.txt"
    requirements.write_text(locked_requirements())
    subprocess.run(
        [
            uv(), "pip", "install", "--quiet",
            "--python-platform", "aarch64-manylinux2014",
            "--python-version", "3.12",
            "--only-binary", ":all:",
            "--no-deps", "--require-hashes",
            "--target", str(out),
            "-r", str(requirements),
        ],
        check=True,
    )  # fmt: skip
    # Console scripts (jmespath's bin/jp.py) are not importable code: nothing in Lambda runs them.
    shutil.rmtree(out / "bin", ignore_errors=True)
    for cache in out.rglob("__pycache__"):
        shutil.rmtree(cache)


def build(out: Path, with_dependencies: bool = True) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_sources(out)
    if with_dependencies:
        install_dependencies(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(REPO / "build" / "lambda"))
    parser.add_argument("--skip-deps", action="store_true", help="sources and SQL only (offline)")
    args = parser.parse_args(argv)
    out = build(Path(args.out), with_dependencies=not args.skip_deps)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {files} files, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
