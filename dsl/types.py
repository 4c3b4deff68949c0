"""Value types of the DSL.

Int values are int64 arrays, Real values float64 arrays, Bool values bool
arrays, Image values (N, H, W) float arrays.  Int is a subtype of Real: any
argument slot typed Real accepts an Int program.  ``NUM`` is a signature
wildcard: an argument typed ``NUM`` takes Int or Real, and a result typed
``NUM`` is Int when every argument is Int and Real otherwise.
"""
from __future__ import annotations

import enum


class Type(enum.Enum):
    INT = "Int"
    REAL = "Real"
    BOOL = "Bool"
    IMAGE = "Image"
    NUM = "Num"  # signature wildcard, never the type of a value

    def __repr__(self) -> str:
        return self.value


INT, REAL, BOOL, IMAGE, NUM = Type.INT, Type.REAL, Type.BOOL, Type.IMAGE, Type.NUM


def accepts(slot: Type, value: Type) -> bool:
    """Whether an argument slot typed ``slot`` accepts a program of type ``value``."""
    if slot is value:
        return True
    if slot is REAL or slot is NUM:
        return value in (INT, REAL)
    return False


def result_type(declared: Type, arg_types: tuple[Type, ...]) -> Type:
    """The concrete result type of a primitive applied to ``arg_types``."""
    if declared is not NUM:
        return declared
    numeric = [t for t in arg_types if t in (INT, REAL)]
    return INT if all(t is INT for t in numeric) else REAL
