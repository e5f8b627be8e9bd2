"""Enumerations shared by the native module and Python code."""

from __future__ import annotations

import enum


class Operation(enum.IntEnum):
    """What a WAL record does. The value is the on-disk operation code.

    Codes 5..=255 are for application-defined operations: ``Operation(7)`` is a pseudo-member
    named ``OTHER`` whose value is 7, so every code read from a WAL maps to an ``Operation``.
    """

    INSERT = 1
    UPDATE = 2
    DELETE = 3
    DDL = 4

    @classmethod
    def _missing_(cls, value: object) -> Operation | None:
        if isinstance(value, int) and not isinstance(value, bool) and 5 <= value <= 255:
            member = int.__new__(cls, value)
            member._name_ = "OTHER"
            member._value_ = value
            # Cached like a real member, so `Operation(7) is Operation(7)`.
            return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]
        return None

    @classmethod
    def other(cls, code: int) -> Operation:
        """The operation for an application-defined code (5..=255)."""
        if not 5 <= code <= 255:
            raise ValueError(f"application-defined operation codes are 5..=255, not {code}")
        return cls(code)

    @property
    def is_other(self) -> bool:
        """True for application-defined codes (5..=255)."""
        return self.value >= 5

    def __repr__(self) -> str:
        if self.is_other:
            return f"<Operation.OTHER: {self.value}>"
        return f"<Operation.{self.name}: {self.value}>"


class VectorOrdering(str, enum.Enum):
    """How one vector clock relates to another; each member equals its lower-case name."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"

    def __str__(self) -> str:
        return self.value
