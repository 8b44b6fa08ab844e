"""Build the Lambda artifact directory that ``aws cloudformation package`` zips and uploads.

Layout of ``build/lambda`` (the ``Code`` path in cfn.yaml)::

    snapcdc/            functions/snapcdc, as it is: the package holds exactly what is deployed
    snapcdc/sql/templates/   the Athena templates (the top-level sql/, linked into the package)
    jinja2/ markupsafe/ aws_lambda_powertools/ ...   arm64 / CPython 3.12 wheels

boto3 is not bundled: the Lambda Python runtime provides it.

Usage: python scripts/build_lambda.py [OUT_DIR] [--skip-deps]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "functions" / "snapcdc"
# What the handlers import beyond the standard library and boto3 (ranges as in pyproject.toml).
RUNTIME_DEPENDENCIES = [
    "jinja2>=3.1,<4",
    "markupsafe>=2.1,<4",
    "aws-lambda-powertools>=3.0,<4",
    # aggregated Kinesis records; aws-kinesis-agg imports six without declaring it
    "aws-kinesis-agg>=1.2.3,<1.3",
    "six>=1.16,<2",
    "protobuf>=4.21,<8",
]
# Byte code is the interpreter's cache, not source; symlinks (sql/templates) are copied as files.
BYTECODE = shutil.ignore_patterns("__pycache__", "*.pyc")


def copy_sources(out: Path) -> None:
    shutil.copytree(PACKAGE, out / "snapcdc", ignore=BYTECODE)


def install_dependencies(out: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet",
            "--platform", "manylinux2014_aarch64",
            "--implementation", "cp",
            "--python-version", "3.12",
            "--only-binary=:all:",
            "--target", str(out),
            *RUNTIME_DEPENDENCIES,
        ],
        check=True,
    )  # fmt: skip


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
