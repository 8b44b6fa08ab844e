"""The embedded runtime and the ``snapcdc`` command line: never deployed.

- ``cli``: the ``snapcdc`` commands.
- ``engine``: the pipeline's Athena SQL executed on DuckDB.
- ``emulator``: the AWS side (moto plus the bridges moto lacks), running ``cfn.yaml`` in process.
- ``stack``: operations on a deployed stack (redrive, approve/reject) for the CLI.
"""
