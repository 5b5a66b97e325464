"""Three LLVM intrinsics for the text scanners: a 64-byte compare into a bit mask, popcount and
count of trailing zeros.

numba has no movemask: comparing bytes one by one leaves a branch or a shift per byte. Written
as LLVM vector IR (load <64 x i8>, compare with a splat, bitcast <64 x i1> to i64), the
compiler emits the host's own instructions for it (AVX-512 compare into a mask register,
AVX2/SSE2 compare + movemask elsewhere), so the line index (ntu._index_lines) reads 64 bytes
per step. The approach is the one simdjson popularised (Langdale & Lemire, "Parsing Gigabytes
of JSON per Second", 2019): byte masks, then bit tricks on the masks.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_I8x64 = ir.VectorType(ir.IntType(8), 64)


@intrinsic
def eq_mask64(typingctx, arr, pos, value):
    """uint64 with bit i set where ``arr[pos + i] == value``, for i < 64 (one unaligned vector
    load: the caller guarantees ``pos + 64 <= len(arr)``). arr: a contiguous uint8 array."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint8):
        return None
    sig = types.uint64(arr, pos, value)

    def codegen(context, builder, signature, args):
        a, p, v = args
        ary = context.make_array(signature.args[0])(context, builder, a)
        vec = builder.load(
            builder.bitcast(builder.gep(ary.data, [p]), _I8x64.as_pointer()), align=1
        )
        byte = builder.trunc(v, ir.IntType(8)) if v.type.width > 8 else v
        splat = builder.insert_element(
            ir.Constant(_I8x64, None), byte, ir.Constant(ir.IntType(32), 0)
        )
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), 64), [0] * 64)
        splat = builder.shuffle_vector(splat, ir.Constant(_I8x64, None), zeros)
        return builder.bitcast(builder.icmp_unsigned("==", vec, splat), ir.IntType(64))

    return sig, codegen


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64."""
    sig = types.int64(x)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def tzcount(typingctx, x):
    """The number of trailing zero bits of a non-zero uint64."""
    sig = types.int64(x)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@intrinsic
def load_u64(typingctx, arr, pos):
    """The 8 bytes ``arr[pos:pos + 8]`` as one little-endian uint64 (an unaligned load: the
    caller guarantees ``pos + 8 <= len(arr)``). arr: a contiguous uint8 array."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint8):
        return None
    sig = types.uint64(arr, pos)

    def codegen(context, builder, signature, args):
        a, p = args
        ary = context.make_array(signature.args[0])(context, builder, a)
        ptr = builder.bitcast(builder.gep(ary.data, [p]), ir.IntType(64).as_pointer())
        return builder.load(ptr, align=1)

    return sig, codegen
