"""Packed compares the kernels need and numba does not derive from a loop (numba intrinsics, LLVM IR).

Each tests 8 consecutive floats and packs the 8 results into the low bits of an integer: on x86 with AVX2 one
compare and one vmovmskps for float32 (two of each for float64). A loop that builds the same mask
(`mask |= (x[j] != 0) << j`) or ORs the tests together compiles to 64-bit lanes, 4 entries per instruction, and takes
2-3x as long. popcount counts the set bits (llvm.ctpop). Other machines get LLVM's own lowering of the same IR,
with the same results. The caller keeps every 8-entry window inside its array: nothing is checked.
"""

from __future__ import annotations

import llvmlite.ir as ir
from numba import types
from numba.extending import intrinsic

LANES = 8  # entries per packed compare


def _is_float_vector(x) -> bool:
    """A contiguous 1-D float32/float64 array type."""
    return isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C" and x.dtype in (types.float32,
                                                                                         types.float64)


def _load8(context, builder, array_type, array, start):
    """x[start:start + 8] as one LLVM vector."""
    data = context.make_array(array_type)(context, builder, array).data
    vector = ir.VectorType(context.get_value_type(array_type.dtype), LANES)
    first = builder.bitcast(builder.gep(data, [start]), vector.as_pointer())
    return builder.load(first, align=array_type.dtype.bitwidth // 8)


def _bits(builder, lanes):
    """A vector of 8 booleans as the low bits of a uint64."""
    return builder.zext(builder.bitcast(lanes, ir.IntType(LANES)), ir.IntType(64))


@intrinsic
def nonzero_bits8(typingctx, x, start):
    """Bit i set where x[start + i] != 0, i < 8 (NaN counts as non-zero and -0.0 as zero, as `!=` says)."""
    if not (_is_float_vector(x) and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        values = _load8(context, builder, signature.args[0], args[0], args[1])
        return _bits(builder, builder.fcmp_unordered("!=", values, ir.Constant(values.type, None)))
    return types.uint64(x, start), codegen


@intrinsic
def differ_bits8(typingctx, x, i, y, j):
    """Bit k set where x[i + k] != y[j + k], k < 8 (a NaN differs from everything, itself included)."""
    if not (_is_float_vector(x) and _is_float_vector(y) and x.dtype == y.dtype and isinstance(i, types.Integer)
            and isinstance(j, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        a = _load8(context, builder, signature.args[0], args[0], args[1])
        b = _load8(context, builder, signature.args[2], args[2], args[3])
        return _bits(builder, builder.fcmp_unordered("!=", a, b))
    return types.uint64(x, i, y, j), codegen


@intrinsic
def nonfinite_bits8(typingctx, x, start):
    """Bit i set where x[start + i] is NaN or infinite (x - x is NaN exactly then)."""
    if not (_is_float_vector(x) and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        values = _load8(context, builder, signature.args[0], args[0], args[1])
        zero_or_nan = builder.fsub(values, values)
        return _bits(builder, builder.fcmp_unordered("uno", zero_or_nan, zero_or_nan))
    return types.uint64(x, start), codegen


@intrinsic
def popcount(typingctx, value):
    """The number of set bits of a uint64."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        ctpop = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(ctpop, [args[0]])
    return types.uint64(value), codegen
