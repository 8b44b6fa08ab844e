"""snapcdc: change data capture from full-table exports.

Layout (the Lambda artifact is built from this package minus ``local/``):

- ``contract``: export keys, table configuration, the names that may reach SQL.
- ``sqlrender`` / ``queries``: the Athena SQL templates in ``sql/`` and their typed API.
- ``handlers``: thin Lambda entry points of the state machine and the Kinesis consumer.
- ``local``: the embedded runtime (DuckDB engine, AWS emulation, ``snapcdc`` CLI); never deployed.
"""

__version__ = "0.1.0"
