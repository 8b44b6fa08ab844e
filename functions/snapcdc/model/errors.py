"""Errors the handlers raise on purpose. Step Functions sees the class name as the error name
(``States.ALL`` catches them all) and MarkFailed records the message as the readable cause."""


class ExportCheckFailed(Exception):
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


class ContractError(ValueError):
    """An export key, table configuration or header that breaks the contract.

    The message names the offending value and says what would be accepted.
    """


class ExportFailed(Exception):
    """A DynamoDB table export failed, or wrote something that is not an export."""


class VerifyFailed(Exception):
    """A verify could not compare a table (its head names no export, a result is unreadable)."""
