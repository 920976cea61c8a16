"""Metadata filters, compiled to parameterised SQL over a JSONB column.

A filter is a dict: ``{"channel": "chat"}`` (shorthand for ``$eq``),
``{"channel": {"$in": ["chat", "sms"]}}``, ``{"$and": [...]}``, ``{"$or": [...]}``.
Keys and values only ever travel as parameters. Numbers compare numerically
against values that look like numbers; strings compare as strings.

Every condition is evaluated against every turn searched, so a filter's size
is capped (MOSS_MAX_FILTER_CLAUSES conditions, each $in / $nin value counting
as one, nested at most MOSS_MAX_FILTER_DEPTH levels): the check stops at the
first condition over the limit, before any SQL is built or run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from sessions_app.errors import InvalidInput
from sessions_app.validation import text_is_storable

COMPARISONS = {"$eq": "=", "$ne": "<>", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
MEMBERSHIP = {"$in", "$nin"}
LOGICAL = {"$and", "$or"}
# Stored strings that compare as numbers. The exponent has at most 3 digits: PostgreSQL's
# numeric overflows near 1e131072, and "1e999999" would fail every query it meets.
NUMBER_RE = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?$"

Scalar = str | int | float


@dataclass
class _Budget:
    """Conditions left before the filter is over MOSS_MAX_FILTER_CLAUSES."""

    left: int

    def spend(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            limit = settings.MOSS_MAX_FILTER_CLAUSES
            raise InvalidInput(
                f"filter has more than {limit} conditions (each $in / $nin value counts "
                f"as one); the limit is MOSS_MAX_FILTER_CLAUSES={limit}"
            )


def filter_compile(spec: Any, *, column: str) -> tuple[str, list[Any]]:
    """SQL (a boolean expression over ``column``) and its parameters."""
    if spec is None or spec == {}:
        return "TRUE", []
    budget = _Budget(left=settings.MOSS_MAX_FILTER_CLAUSES)
    return _compile(spec, column=column, depth=0, budget=budget)


def _compile(spec: Any, *, column: str, depth: int, budget: _Budget) -> tuple[str, list[Any]]:
    limit = settings.MOSS_MAX_FILTER_DEPTH
    if depth > limit:
        raise InvalidInput(
            f"filter is nested more than {limit} levels deep; "
            f"the limit is MOSS_MAX_FILTER_DEPTH={limit}"
        )
    if not isinstance(spec, dict) or not spec:
        raise InvalidInput("filter must be a non-empty object")
    parts: list[str] = []
    params: list[Any] = []
    for key, value in spec.items():
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise InvalidInput(f"filter {key} takes a non-empty list of filters")
            compiled = [
                _compile(item, column=column, depth=depth + 1, budget=budget) for item in value
            ]
            joiner = " AND " if key == "$and" else " OR "
            parts.append("(" + joiner.join(sql for sql, _ in compiled) + ")")
            for _, item_params in compiled:
                params.extend(item_params)
        elif key.startswith("$"):
            raise InvalidInput(f"unknown filter operator {key!r}")
        else:
            _key_check(key)
            sql, field_params = _field(key, value, column=column, budget=budget)
            parts.append(sql)
            params.extend(field_params)
    return "(" + " AND ".join(parts) + ")", params


def _key_check(key: str) -> None:
    if not key or not text_is_storable(key):
        raise InvalidInput(
            "filter keys must be non-empty, without NUL characters or unpaired surrogates"
        )


def _field(key: str, condition: Any, *, column: str, budget: _Budget) -> tuple[str, list[Any]]:
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if not condition:
        raise InvalidInput(f"filter on {key!r} has no operator")
    parts: list[str] = []
    params: list[Any] = []
    for op, value in condition.items():
        budget.spend(len(value) if op in MEMBERSHIP and isinstance(value, list) else 1)
        if op in COMPARISONS:
            sql, op_params = _compare(key, COMPARISONS[op], _scalar(op, key, value), column)
        elif op in MEMBERSHIP:
            if not isinstance(value, list) or not value:
                raise InvalidInput(f"filter {op} on {key!r} takes a non-empty list")
            members = [_scalar(op, key, item) for item in value]
            sql, op_params = _member(key, members, column, negate=op == "$nin")
        else:
            raise InvalidInput(f"unknown filter operator {op!r} on {key!r}")
        parts.append(sql)
        params.extend(op_params)
    return "(" + " AND ".join(parts) + ")", params


def _scalar(op: str, key: str, value: Any) -> Scalar:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"filter {op} on {key!r} takes a string or a number")
    if isinstance(value, str) and not text_is_storable(value):
        raise InvalidInput(
            f"filter {op} on {key!r}: strings must not contain NUL characters "
            "or unpaired surrogates"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"filter {op} on {key!r} takes a finite number")
    return value


def _number_sql(column: str) -> str:
    """The key's stored value as a number where it looks like one, else NULL."""
    return f"(CASE WHEN ({column} ->> %s) ~ %s THEN ({column} ->> %s)::numeric END)"


def _member(key: str, members: list[Scalar], column: str, *, negate: bool) -> tuple[str, list[Any]]:
    """$in / $nin: string members compare as text, numbers numerically, as $eq does."""
    texts = [member for member in members if isinstance(member, str)]
    numbers = [str(member) for member in members if not isinstance(member, str)]
    tests: list[str] = []
    params: list[Any] = []
    if texts:
        tests.append(f"(({column} ->> %s) = ANY(%s))")
        params += [key, texts]
    if numbers:
        tests.append(f"({_number_sql(column)} = ANY(%s::numeric[]))")
        params += [key, NUMBER_RE, key, numbers]
    found = " OR ".join(tests)
    # NULL (a missing key, or no member matched and one could not compare) is "not in".
    if negate:
        return f"(COALESCE(NOT ({found}), true))", params
    return f"(COALESCE(({found}), false))", params


def _compare(key: str, sql_op: str, value: Scalar, column: str) -> tuple[str, list[Any]]:
    if isinstance(value, str):
        if sql_op == "<>":
            return f"(({column} ->> %s) IS DISTINCT FROM %s)", [key, value]
        return f"(({column} ->> %s) {sql_op} %s)", [key, value]
    number_sql = _number_sql(column)
    sql = f"({number_sql} {sql_op} %s)"
    if sql_op == "<>":
        sql = f"({number_sql} IS DISTINCT FROM %s)"
    return sql, [key, NUMBER_RE, key, value]
