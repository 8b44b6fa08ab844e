"""Errors the handlers raise on purpose. Step Functions sees the class name as the error name
(``States.ALL`` catches them all) and MarkFailed records the message as the readable cause.

A reason that advises setting a table option holds it as a :class:`Setting`, so that whoever
shows the reason words it as its reader configures a table: the pipeline's reasons (``str``)
say ``set "key": ["id"] in the table's _table.json``; ``snapcdc diff``, which reads no
``_table.json``, says ``give --key id`` (:meth:`Advised.words`).

>>> error = ContractError("key changed; ", Setting("key", ["id"]), " and upload it again")
>>> print(error)
key changed; set "key": ["id"] in the table's _table.json and upload it again
>>> error.words(lambda s: f"give --{s.option} {','.join(s.value)}")
'key changed; give --key id and upload it again'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TABLE_CONFIG_FILE = "_table.json"


@dataclass(frozen=True)
class Setting:
    """A table option a reason advises setting; ``value`` None when the reason cannot tell
    which value (the user knows: which columns identify a row, say)."""

    option: str
    value: Any = None


def in_table_config(setting: Setting) -> str:
    """A setting as the pipeline's reasons word it: in the table's ``_table.json``."""
    value = "[...]" if setting.value is None else json.dumps(setting.value, ensure_ascii=False)
    return f'set "{setting.option}": {value} in the table\'s {TABLE_CONFIG_FILE}'


class Advised(Exception):
    """An error whose message is built from text and :class:`Setting` parts."""

    def __str__(self) -> str:
        return self.words(in_table_config)

    def words(self, setting: Callable[[Setting], str]) -> str:
        """The message, each setting worded by ``setting``."""
        return "".join(setting(p) if isinstance(p, Setting) else str(p) for p in self.args)


class ExportCheckFailed(Advised):
    """The new export has duplicate or empty keys, or rows with the wrong number of fields."""


class QueryFailed(Exception):
    """An Athena statement failed or was cancelled; the message carries Athena's reason."""


class ResultFormatError(ValueError):
    """An Athena result file is not the CSV Athena writes (or not the shape the query promises)."""


class PublishFailed(Exception):
    """Kinesis kept refusing records after the bounded retries, or a record breaks its limits."""


class OpError(ValueError):
    """A Kinesis record is not a valid snapcdc op (a poison record for the consumer)."""


class AthenaThrottled(Exception):
    """Athena refused a call with TooManyRequestsException (its active-query quota was reached,
    after botocore's own retries); the state machine retries the step with backoff and jitter."""


class ContractError(Advised, ValueError):
    """An export key, table configuration or header that breaks the contract.

    The message names the offending value and says what would be accepted.
    """


class ExportFailed(Exception):
    """A DynamoDB table export failed, or wrote something that is not an export."""


class VerifyFailed(Exception):
    """A verify could not compare a table (its head names no export, a result is unreadable)."""
