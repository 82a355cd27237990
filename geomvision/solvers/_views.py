"""Carving flat numba scratch arrays into shaped views without allocating.

- ``carve(w, o, shape) -> (view, o + size)``: the next prod(shape) items of the flat array w
  from offset o as a C-contiguous array of ``shape`` (a tuple of ints), and the offset past it
  (IndexError when w is too short).
- ``as_shape(a, shape)``: the 1-D C-contiguous array ``a`` seen as a C-contiguous array of
  ``shape`` (whose product must be ``a.size``: unchecked, use ``carve``). Same memory, same
  owner. Unlike ``a.reshape(shape)`` it builds the view in place instead of calling numba's
  out-of-line reshape helper, which matters where a draw carves its scratch (the 5-point
  solver; figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

from numba import njit, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


@intrinsic
def as_shape(typingctx, arr, shape):
    """``arr`` (1-D, C-contiguous) as a C-contiguous view of ``shape`` (its product must be
    arr.size: unchecked)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and isinstance(shape, types.BaseTuple) and len(shape) > 0
            and all(isinstance(t, types.Integer) for t in shape)):
        return None
    nd = len(shape)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        dst = make_array(sig.return_type)(context, builder)
        dims = [context.cast(builder, builder.extract_value(args[1], k), sig.args[1][k], types.intp)
                for k in range(nd)]
        strides = [None] * nd
        step = src.itemsize
        for k in range(nd - 1, -1, -1):  # C order: the last axis is contiguous
            strides[k] = step
            step = builder.mul(step, dims[k])
        populate_array(dst, data=src.data, shape=dims, strides=strides, itemsize=src.itemsize, meminfo=src.meminfo,
                       parent=src.parent)
        return impl_ret_borrowed(context, builder, sig.return_type, dst._getvalue())

    return arr.copy(ndim=nd, layout="C")(arr, shape), codegen


@njit(inline="always")
def carve(w, o, shape):
    """(w[o:o+size] seen as ``shape``, o + size) with size = prod(shape)."""
    n = 1
    for d in shape:
        n *= d
    if o + n > w.shape[0]:
        raise IndexError("carve: the scratch array is smaller than its layout")
    return as_shape(w[o : o + n], shape), o + n
