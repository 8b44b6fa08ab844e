"""snapcdc: change data capture from full-table exports. This package is what is deployed.

- ``handlers``: the Lambda entry points (``Handler`` in cfn.yaml), thin: typed state in, a step out.
- ``steps``: one module per handler, named alike, with the logic in plain functions.
- ``model``: the export contract, settings, limits, errors and events the steps share.
- ``sql``: the Athena SQL templates (the top-level ``sql/``) and their rendering.
- ``aws``: the adapters: boto3 clients, the registry table, the lock, Athena result files.

The embedded runtime and the CLI are the separate package ``snapcdc_local`` (never deployed).
"""

__version__ = "0.1.0"
