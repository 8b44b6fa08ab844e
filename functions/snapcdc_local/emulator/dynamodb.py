"""moto's DynamoDB, made to behave and perform as this pipeline needs DynamoDB to.

**Conditional writes are atomic.** DynamoDB evaluates a write's condition and applies the write
as one step; moto (5.2.5) reads the current item, evaluates the condition, then stores, with
nothing stopping another thread in between. The consumer applies a batch's ops from several
threads and relies on ``version <= :v`` to let the newer of two ops on one row win (and the
table lock is a conditional put too): without atomic writes an older INSERT could land after a
newer DELETE that had checked the same old item. Every item write therefore runs under one lock.
So does every request as a whole (moto's ``DynamoHandler.call_action``): moto reads a table's
item dicts without a lock and updates items in place, so a ``Query`` or ``Scan`` (or the
response built from its items) running beside a write failed with "dictionary changed size
during iteration", where DynamoDB serves reads and writes concurrently.

**Item reads and writes answer fast.** moto builds every response with a generic, shape-driven
serializer that walks each attribute of each item; a ``Scan`` of 100,000 target rows spends
minutes there (moto 5.2.5), and each of the consumer's ``PutItem`` ~10% of its time. DynamoDB
answers in JSON and moto's results for item reads and writes (items, ``Attributes``,
``ConsumedCapacity``) are already DynamoDB JSON, so for ``Scan``, ``Query``, ``GetItem``,
``BatchGetItem``, ``PutItem``, ``UpdateItem`` and ``DeleteItem`` the result is written with
``json.dumps`` instead. Anything ``json`` cannot write as is (binary values) goes the generic
way, so the bytes on the wire do not change, only the time it takes.

**Condition expressions are parsed once.** moto parses a write's ``ConditionExpression`` twice
per call (the response layer validates it, the table evaluates it), and the parse is most of the
call's time. A parse depends only on the expression, its names and its values, and moto's
syntax trees are immutable once built, so :func:`_parse_cache` keeps the trees of the last
expressions seen (the consumer writes one expression with one version's values ~100,000 times).
An expression that fails to parse is never cached: it fails again, with the same error.

**A Scan's page starts where the last one ended.** DynamoDB continues a paginated ``Scan`` from
its ``ExclusiveStartKey``; moto (5.2) sorts all of a table's items with its ``DynamoType``
comparisons on every page, then walks them from the first, comparing each with the start key,
until it passes it: O(items) slow comparisons per page, O(items x pages) per Scan (a read-back of
100,000 target rows, 26 pages, spent ~150 s there), and deep-copies every item it returns.
:func:`_fast_scan_pages` sorts by the same keys (the keys' ``cast_value``, which is what
``DynamoType`` compares) natively, once until the next write, finds the first item after the
start key by bisection, and walks the page as moto's loop does (segments, limits, the 1 MB page,
``LastEvaluatedKey``, then the filter and the projection) without the copies. Index scans and
legacy ``ScanFilter`` go to moto's own ``scan``.

**Item sizes are limited as DynamoDB limits them.** DynamoDB refuses an item over 400 KB
(409,600 bytes, attribute names and values counted as its item-size page says) with a
``ValidationException: Item size has exceeded the maximum allowed size``, and a partition key
over 2,048 bytes. moto refuses both with AWS's messages, but counts items without the
map/list overheads and refuses from 405,000 bytes on; here every stored item is measured with
``snapcdc.model.limits.item_size`` against 409,600 bytes, and moto's own check moves to that limit.
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html

>>> drop_none({"Items": [], "LastEvaluatedKey": None, "Count": 0})
{'Items': [], 'Count': 0}
"""

from __future__ import annotations

import bisect
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from unittest import mock

from snapcdc_local.emulator import fast_paths
from snapcdc_local.emulator.locking import serialized

FAST_OPERATIONS = frozenset(
    {"Scan", "Query", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem"}
)
# The backend methods that write items (each checks its conditions before it writes).
WRITE_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
)
CONTENT_TYPE = "application/x-amz-json-1.0"
PARSE_CACHE_SIZE = 4096


# The lock of the innermost installed() block: the direct PutItem (.dynamodb_direct) takes it too.
_request_locks: list[Any] = []


def request_lock() -> Any:
    """The lock every DynamoDB request runs under while :func:`installed` is active, or ``None``."""
    return _request_locks[-1] if _request_locks else None


def drop_none(result: dict[str, Any]) -> dict[str, Any]:
    """Top-level members without a value are left out, as the generic serializer does."""
    return {k: v for k, v in result.items() if v is not None}


@contextmanager
def installed() -> Iterator[None]:
    """While the block runs: item writes atomic, item reads serialized with ``json``."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    counter = [0]  # writes so far: a Scan's sort order is kept until the next one

    def counted(method: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            counter[0] += 1  # under the lock (serialized below)
            return method(*args, **kwargs)

        return write

    writes = {name: counted(getattr(DynamoDBBackend, name)) for name in WRITE_METHODS}
    requests = {"call_action": DynamoHandler.call_action}

    def optional(name: str, needs: tuple[str, ...], part: Any) -> Any:
        return part if fast_paths.usable(name, *needs) else nullcontext()

    with (
        serialized(DynamoDBBackend, writes, lock),
        serialized(DynamoHandler, requests, lock),
        _item_size_limit(),
        optional("dynamodb-json", FAST_READS_NEED, _fast_reads()),
        optional("condition-cache", PARSE_CACHE_NEEDS, _parse_cache()),
        optional("scan-pages", SCAN_PAGES_NEED, _fast_scan_pages(counter)),
        _fast_to_dict()
        if fast_paths.proven("dynamodb-to-dict", TO_DICT_SOURCES)
        else nullcontext(),
    ):
        _request_locks.append(lock)
        try:
            yield
        finally:
            _request_locks.remove(lock)


# What each fast path relies on (.fast_paths): moto's methods it replaces or calls, as they are.
FAST_READS_NEED = (
    "moto.core.responses:BaseResponse.serialized(self, action_result)",
    "moto.core.responses:ActionResult",
    "moto.dynamodb.responses:DynamoResult",
)
PARSE_CACHE_NEEDS = (
    "moto.dynamodb.comparisons:ConditionExpressionParser.parse(self)",
    "moto.dynamodb.comparisons:ConditionExpressionParser.__init__(self, condition_expression, "
    "expression_attribute_names, expression_attribute_values)",
)
SCAN_PAGES_NEED = (
    "moto.dynamodb.models.table:Table.scan(self, filters, limit, exclusive_start_key, "
    "filter_expression, index_name, consistent_read, projection_expression, segments)",
    "moto.dynamodb.models.table:Table.all_items(self)",
    "moto.dynamodb.models.table:RESULT_SIZE_LIMIT",
    "moto.dynamodb.models.dynamo_type:DynamoType.cast_value",
)


# moto's dynamo_to_dict, as proven (moto 5.2.5 and 5.2.6): _fast_to_dict gives what it gives.
TO_DICT_SOURCES = {
    "moto.dynamodb.models.utilities:dynamo_to_dict": {"80f600124c13ddcb"},
    "moto.dynamodb.responses:DynamoResult.__init__": {"e2394775cd5ef6ad"},
}


@contextmanager
def _fast_to_dict() -> Iterator[None]:
    """moto's ``dynamo_to_dict`` (every item answer is made plain dicts with it) by exact type:
    moto asks each value of each item whether it is a datetime, a ``DynamoType``, has a
    ``to_json``, is a dict or a list; a Scan page of 4,000 target rows spent most of its time
    there. Strings, numbers, booleans, ``None``, dicts (moto's ``LimitedSizeDict`` of an item's
    attributes too), lists and non-binary ``DynamoType`` values are converted here, the same
    way; anything else (binary values, datetimes, objects with ``to_json``) by moto's own."""
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    original = responses.dynamo_to_dict
    plain = (str, int, float, bool, type(None))
    mappings = (dict, LimitedSizeDict)

    def to_dict(obj: Any) -> Any:
        kind = type(obj)
        if kind in plain:
            return obj
        if kind in mappings:
            return {k: to_dict(v) for k, v in obj.items()}
        if kind is list:
            return [to_dict(v) for v in obj]
        if kind is DynamoType and obj.type not in ("B", "BS"):
            return {obj.type: to_dict(obj.value)}
        return original(obj)

    with mock.patch.object(responses, "dynamo_to_dict", to_dict):
        yield


@contextmanager
def _fast_scan_pages(writes: list[int]) -> Iterator[None]:
    """moto's ``Table.scan`` for a table's own items (no index, no legacy ``ScanFilter``): the
    same pages, from a sort kept until the next write (``writes[0]`` counts them) and a start
    found by bisection; each item measured once and not copied (moto deep-copies every item it
    returns: nothing changes them here, the request holds the DynamoDB lock while its response
    is built from them as new dicts)."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    scan = Table.scan
    # One table's order at a time (a Scan reads one table page after page): the write count it
    # was taken at, the table, its items in key order and their keys.
    last: list[tuple[int, Any, list[Any], list[Any]]] = []

    def key_attrs(table: Any) -> list[str]:
        return [a for a in (table.hash_key_attr, table.range_key_attr) if a]

    def sorted_items(table: Any) -> tuple[list[Any], list[Any]]:
        if last and last[0][0] == writes[0] and last[0][1] is table:
            return last[0][2], last[0][3]
        attrs = key_attrs(table)
        if table.range_key_attr:
            items = [item for hash_set in table.items.values() for item in hash_set.values()]
        else:
            items = list(table.items.values())
        # keys are unique within a table: the sort never compares two items
        keyed = sorted((tuple(item.attrs[a].cast_value for a in attrs), item) for item in items)
        ordered, keys = [item for _, item in keyed], [key for key, _ in keyed]
        last[:] = [(writes[0], table, ordered, keys)]
        return ordered, keys

    def fast_scan(
        self: Any,
        filters: Any,
        limit: Any,
        exclusive_start_key: Any,
        filter_expression: Any = None,
        index_name: Any = None,
        consistent_read: bool = False,
        projection_expression: Any = None,
        segments: Any = (None, None),
    ) -> Any:
        attrs = key_attrs(self)
        if (
            index_name
            or filters
            or (exclusive_start_key and any(a not in exclusive_start_key for a in attrs))
        ):
            return scan(
                self,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                index_name,
                consistent_read,
                projection_expression,
                segments=segments,
            )
        ordered, keys = sorted_items(self)
        start = 0
        if exclusive_start_key:
            first = tuple(DynamoType(exclusive_start_key[a]).cast_value for a in attrs)
            start = bisect.bisect_right(keys, first)
        results: list[Any] = []
        result_size = scanned_count = 0
        last_evaluated_key = None
        for item in itertools.islice(ordered, start, None):
            if not item.is_within_segment(segments):
                continue
            size = item.size()
            if len(results) == limit or result_size + size > RESULT_SIZE_LIMIT:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
                break
            results.append(item)
            result_size += size
            scanned_count += 1
        # As moto: the filter after the page is read, then the projection (new items).
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expression:
            results = [r.project(projection_expression) for r in results]
        return results, scanned_count, last_evaluated_key

    def all_items(table: Any) -> list[Any]:
        return list(sorted_items(table)[0])

    with (
        mock.patch.object(Table, "scan", fast_scan),
        mock.patch.object(Table, "all_items", all_items),
    ):
        yield


# One encoder for every cache key: json.dumps(..., sort_keys=True) builds a new one per call.
_key_text = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


@contextmanager
def _parse_cache(size: int = PARSE_CACHE_SIZE) -> Iterator[dict[Any, Any]]:
    """While the block runs, moto's condition parser answers a parse it made before from a
    bounded cache (least recently used out); yields the cache (tests look into it)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parse = ConditionExpressionParser.parse
    cache: OrderedDict[Any, Any] = OrderedDict()
    lock = threading.Lock()

    def cached_parse(self: Any) -> Any:
        try:
            key = (
                self.condition_expression,
                _key_text(self.expression_attribute_names),
                _key_text(self.expression_attribute_values),
            )
        except (TypeError, ValueError):  # not JSON (not from a request): parse as moto does
            return parse(self)
        with lock:
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
        if hit is None:
            op = parse(self)  # raises for an invalid expression: nothing is cached
            hit = (op, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            with lock:
                cache[key] = hit
                if len(cache) > size:
                    cache.popitem(last=False)
            return op
        op, names, values = hit
        # What parse() leaves on the parser: moto checks unused names and values with it.
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return op

    with mock.patch.object(ConditionExpressionParser, "parse", cached_parse):
        yield cache


@contextmanager
def _item_size_limit() -> Iterator[None]:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.table import Table

    from snapcdc.model.limits import DYNAMODB_ITEM_BYTES, item_size

    put_item = Table.put_item
    measured = threading.local()

    def limited_put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if item_size(item_attrs) > DYNAMODB_ITEM_BYTES:
            raise ItemSizeTooLarge
        measured.whole = True  # the item moto builds now is within the limit, every part of it
        try:
            return put_item(self, item_attrs, *args, **kwargs)
        finally:
            measured.whole = False

    def set_within_limit(self: Any, key: str, value: Any) -> None:
        # moto's LimitedSizeDict.__setitem__ (it guards UpdateItem), at DynamoDB's limit. It
        # measures the whole item at every attribute set (O(n^2) per item built): a PutItem's
        # item, measured whole above, skips it.
        if not getattr(measured, "whole", False):

            def size(v: Any) -> int:
                if type(v) is dynamo_type.DynamoType:
                    return v.size()
                return dynamo_type.bytesize(str(v))

            current = sum(size(v) for v in [*self.keys(), *self.values()])
            if current + dynamo_type.bytesize(key) + size(value) > DYNAMODB_ITEM_BYTES:
                raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    with (
        mock.patch.object(Table, "put_item", limited_put_item),
        mock.patch.object(dynamo_type.LimitedSizeDict, "__setitem__", set_within_limit),
    ):
        yield


@contextmanager
def _fast_reads() -> Iterator[None]:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    original = DynamoHandler.serialized

    def serialized(self: Any, action_result: Any) -> Any:
        result = getattr(action_result, "result", None)
        if type(action_result) not in (ActionResult, DynamoResult) or not isinstance(result, dict):
            return original(self, action_result)
        try:
            action = self._get_action()
        except Exception as exc:  # moto finds its action another way now: serialize as it does
            fast_paths.step_aside("dynamodb-json", f"the action of a response: {exc!r}")
            action = None
        if action in FAST_OPERATIONS and "dynamodb-json" not in fast_paths.stepped_aside:
            try:
                body = json.dumps(drop_none(result), separators=(",", ":"))
            except (TypeError, ValueError):
                return original(self, action_result)
            headers = {"Content-Type": CONTENT_TYPE}
            headers.update(self.response_headers)
            return 200, headers, body
        return original(self, action_result)

    with mock.patch.object(DynamoHandler, "serialized", serialized):
        yield
