"""synth's typed DSL: types, primitives, program trees, evaluation, printing."""
from dsl.parse import parse
from dsl.primitives import ARITHMETIC, REGISTRY, Primitive, PrimitiveRegistry, primitive
from dsl.printing import compile_python, to_expression, to_python, to_sympy
from dsl.program import Apply, Const, Program, Var, apply, const
from dsl.types import BOOL, IMAGE, INT, NUM, REAL, Type

__all__ = ["parse", "ARITHMETIC", "REGISTRY", "Primitive", "PrimitiveRegistry", "primitive",
           "compile_python", "to_expression", "to_python", "to_sympy", "Apply", "Const",
           "Program", "Var", "apply", "const", "BOOL", "IMAGE", "INT", "NUM", "REAL", "Type"]
