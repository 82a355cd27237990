"""Carving flat numba scratch arrays into shaped views without allocating or reference counting.

- ``carve(w, o, shape, owned=False) -> (view, o + size)``: the next prod(shape) items of the
  flat array w from offset o as a C-contiguous array of ``shape`` (a tuple of ints), and the
  offset past it (IndexError when w is too short). The view is borrowed: it holds no reference
  to w's memory, so making, slicing and passing it costs no reference-count update (an atomic
  instruction each; on the 5-point solver's scratch they were a fifth of its time). It is valid
  only while w lives: a view that leaves the kernel must be ``owned=True`` or ``owned_by(view, w)``.
- ``borrowed(value)``: an array or a (nested) tuple of arrays with no references, for a kernel's
  arguments, which the caller keeps alive for the call (RANSAC's data tuple); ``keep_alive(x)``
  marks the point up to which numba must keep the owner of borrowed views made in a kernel.

Views are built in place (data pointer, shape, strides), not by numba's reshape of a slice, which
calls an out-of-line helper (~35 ns a view; figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _flat_view_args(arr, offset, shape):
    """Whether the types are those of a view of a 1-D C-contiguous array at an offset."""
    return (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and isinstance(offset, types.Integer)
            and isinstance(shape, types.BaseTuple) and len(shape) > 0
            and all(isinstance(t, types.Integer) for t in shape))


def _view_codegen(owned):
    """Code of ``owned_view`` / ``borrowed_view``: data pointer, shape and C strides built in
    place (numba's reshape of a slice calls an out-of-line helper, ~35 ns a view)."""
    def codegen(context, builder, sig, args):
        arr_t, off_t, shape_t = sig.args
        src = make_array(arr_t)(context, builder, args[0])
        dst = make_array(sig.return_type)(context, builder)
        nd = len(shape_t)
        dims = [context.cast(builder, builder.extract_value(args[2], k), shape_t[k], types.intp) for k in range(nd)]
        strides = [None] * nd
        step = src.itemsize
        for k in range(nd - 1, -1, -1):  # C order: the last axis is contiguous
            strides[k] = step
            step = builder.mul(step, dims[k])
        data = builder.gep(src.data, [context.cast(builder, args[1], off_t, types.intp)])
        if owned:
            populate_array(dst, data=data, shape=dims, strides=strides, itemsize=src.itemsize, meminfo=src.meminfo,
                           parent=src.parent)
            return impl_ret_borrowed(context, builder, sig.return_type, dst._getvalue())
        populate_array(dst, data=data, shape=dims, strides=strides, itemsize=src.itemsize,
                       meminfo=cgutils.get_null_value(dst.meminfo.type), parent=None)
        return dst._getvalue()

    return codegen


@intrinsic
def owned_view(typingctx, arr, offset, shape):
    """Items offset.. of ``arr`` (1-D, C-contiguous) as a C-contiguous array of ``shape`` holding
    a reference to ``arr``'s memory. Bounds unchecked (use ``carve``)."""
    if not _flat_view_args(arr, offset, shape):
        return None
    return arr.copy(ndim=len(shape), layout="C")(arr, offset, shape), _view_codegen(True)


@intrinsic
def borrowed_view(typingctx, arr, offset, shape):
    """``owned_view`` without the reference (a null meminfo): making, passing and slicing it
    updates no reference count (each update is an atomic instruction; on the 5-point solver's
    ~40 scratch arrays a fifth of its time). Valid only while ``arr`` lives."""
    if not _flat_view_args(arr, offset, shape):
        return None
    return arr.copy(ndim=len(shape), layout="C")(arr, offset, shape), _view_codegen(False)


@njit(inline="always")
def carve(w, o, shape, owned=False):
    """(w[o:o+size] seen as ``shape``, o + size) with size = prod(shape). By default the view is
    borrowed (``borrowed_view``: valid while w lives, no reference counting); ``owned=True``
    keeps a reference to w's memory, for views that are returned to callers."""
    n = 1
    for d in shape:
        n *= d
    if o + n > w.shape[0]:
        raise IndexError("carve: the scratch array is smaller than its layout")
    if owned:
        return owned_view(w, o, shape), o + n
    return borrowed_view(w, o, shape), o + n


def _strip_meminfo(context, builder, ty, val):
    """``val`` of type ``ty`` with every array in it (through nested tuples) given a null meminfo."""
    if isinstance(ty, types.Array):
        ary = make_array(ty)(context, builder, val)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        return ary._getvalue()
    if isinstance(ty, types.BaseTuple):
        for k, t in enumerate(ty.types):
            item = builder.extract_value(val, k)
            val = builder.insert_value(val, _strip_meminfo(context, builder, t, item), k)
        return val
    return val


@intrinsic
def borrowed(typingctx, value):
    """``value`` (an array or a tuple of arrays, nested tuples allowed; other items pass through)
    with no reference to its arrays' memory: passing it on updates no reference count. For the
    arguments of a kernel, which its caller keeps alive for the whole call (RANSAC's data tuple
    goes to every kernel of every draw). Never return the result or store it beyond the call."""
    def codegen(context, builder, sig, args):
        return _strip_meminfo(context, builder, sig.args[0], args[0])

    return value(value), codegen


@intrinsic
def owned_by(typingctx, view, owner):
    """The array ``view`` (borrowed: it points into ``owner``'s memory) holding a reference to
    ``owner``'s memory, so that it may be returned: the one reference-count update is paid once,
    where a borrowed workspace view leaves a kernel."""
    if not (isinstance(view, types.Array) and isinstance(owner, types.Array)):
        return None

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[1])(context, builder, args[1])
        dst = make_array(sig.args[0])(context, builder, args[0])
        dst.meminfo = src.meminfo
        dst.parent = src.parent
        out = dst._getvalue()
        context.nrt.incref(builder, sig.args[0], out)
        return out

    return view(view, owner), codegen


@njit(cache=True)
def keep_alive(owners):
    """Nothing: a use of ``owners`` (arrays whose borrowed views a kernel works on) at the point
    up to which numba must keep them, as it frees a variable after its last use."""
    return None
