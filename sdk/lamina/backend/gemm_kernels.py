"""Lamina's float32 GEMM: an AVX-512 register kernel in LLVM IR, driven from numba.

Imported only through :mod:`lamina.backend.gemm`, which decides when it runs.

The kernel (``ukr``) multiplies a ``12 x kc`` panel of ``a`` by a ``kc x 32`` panel of
``b`` into a ``12 x 32`` tile of ``out``: 24 zmm accumulators, per step of ``k`` two
loads of ``b`` and twelve broadcasts of ``a`` into 24 fused multiply-adds. It is written
as LLVM IR (vector types and the ``llvm.fma`` intrinsic, not left to an auto-vectoriser)
and compiled by llvmlite, numba's own LLVM, for the host CPU. ``a`` comes with a row
and a ``k`` stride, so the kernel reads it in place when either axis is contiguous.
Edges are masks, not other kernels: the last two arguments mask the tile's columns
(``b``'s loads and ``out``'s stores, so nothing outside either array is touched), and
only the tile's first ``mr`` rows are stored (rows past them read row 0).

The driver (:func:`gemm_driver`, numba, without the GIL) blocks the product: ``k`` in
equal blocks of at most :data:`KC` (a 32-column panel of ``b`` stays in L1), for each
block ``a``'s rows in blocks of :data:`MC` (in L2), each against every 32-column panel
of ``b``. ``a`` is read in place when its rows or its columns are contiguous (``x``,
``x.T``), else packed into 12-row panels; ``b`` in place when its rows are contiguous
(a layer's kernel, an upstream gradient), else packed into 32-column panels (``W.T``).

Every element of the result is ``((a[i, 0] * b[0, j] + a[i, 1] * b[1, j]) + ...)`` in
fused steps over each ``k`` block, blocks added in order: the same operations wherever
the element sits in its tile, so a product cut into any row or column ranges gives
exactly the bits of the whole product, and so do the pool's parts.
"""

from __future__ import annotations

import numba
import numpy as np

from lamina.backend import compiled
from lamina.backend.gemm import KERNEL_TYPE

MR, NR, LANES = 12, 32, 16  # tile rows, tile columns, floats per zmm register
KC = 256  # k per block: b's 32-column panel (32 KB) stays in L1
MC = 192  # rows of a per block, against every panel of b (a block of a stays in L2)



def _masked_load(name: str, pointer: str, v: int) -> str:
    """IR: ``name`` = the 16 floats at ``pointer`` under column mask ``v`` (zeros outside
    it, and nothing outside it is read)."""
    return (f"  {name} = call <16 x float> @llvm.masked.load.v16f32.p0(ptr {pointer}, "
            f"i32 4, <16 x i1> %m{v}, <16 x float> zeroinitializer)")


def kernel_ir(name: str = "ukr") -> str:
    """The register kernel's LLVM IR (opaque pointers: LLVM 15 and later), as the
    function ``name``."""
    nv = NR // LANES
    lines = [
        "declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)",
        "declare <16 x float> @llvm.masked.load.v16f32.p0(ptr, i32, <16 x i1>, <16 x float>)",
        "declare void @llvm.masked.store.v16f32.p0(<16 x float>, ptr, i32, <16 x i1>)",
        f"define void @{name}(i64 %kc, ptr noalias %a, i64 %sai, i64 %sap, ptr noalias %b,"
        " i64 %ldb, ptr noalias %c, i64 %ldc, i64 %acc, i64 %mr, i32 %mask0, i32 %mask1)"
        " nounwind {",
        "entry:",
    ]
    for i in range(MR):  # row i of the tile reads a's row i; past mr row 0, not stored
        lines += [f"  %live{i} = icmp sgt i64 %mr, {i}",
                  f"  %ri{i} = select i1 %live{i}, i64 {i}, i64 0",
                  f"  %roff{i} = mul i64 %ri{i}, %sai",
                  f"  %arow{i} = getelementptr float, ptr %a, i64 %roff{i}"]
    for v in range(nv):
        lines += [f"  %mt{v} = trunc i32 %mask{v} to i16",
                  f"  %m{v} = bitcast i16 %mt{v} to <16 x i1>"]
    lines += ["  br label %loop", "loop:", "  %p = phi i64 [0, %entry], [%pn, %loop]"]
    for i in range(MR):
        for v in range(nv):
            lines.append(f"  %c{i}_{v} = phi <16 x float> [zeroinitializer, %entry], "
                         f"[%n{i}_{v}, %loop]")
    lines += ["  %brow = mul i64 %p, %ldb", "  %acol = mul i64 %p, %sap"]
    for v in range(nv):
        lines += [f"  %bo{v} = add i64 %brow, {v * LANES}",
                  f"  %bp{v} = getelementptr float, ptr %b, i64 %bo{v}",
                  _masked_load(f"%b{v}", f"%bp{v}", v)]
    for i in range(MR):
        lines += [f"  %ap{i} = getelementptr float, ptr %arow{i}, i64 %acol",
                  f"  %as{i} = load float, ptr %ap{i}, align 4",
                  f"  %ai{i} = insertelement <16 x float> poison, float %as{i}, i32 0",
                  f"  %a{i} = shufflevector <16 x float> %ai{i}, <16 x float> poison, "
                  "<16 x i32> zeroinitializer"]
        for v in range(nv):
            lines.append(f"  %n{i}_{v} = call <16 x float> @llvm.fma.v16f32(<16 x float> "
                         f"%a{i}, <16 x float> %b{v}, <16 x float> %c{i}_{v})")
    lines += ["  %pn = add i64 %p, 1", "  %more = icmp slt i64 %pn, %kc",
              "  br i1 %more, label %loop, label %row0",
              ]
    # the stores: rows < mr only; columns under the masks; added to out when acc != 0
    lines.append("row0:")
    lines.append("  %add = icmp ne i64 %acc, 0")
    for i in range(MR):
        lines += [f"  br i1 %live{i}, label %store{i}, label %done",
                  f"store{i}:",
                  f"  %crow{i} = mul i64 %ldc, {i}"]
        for v in range(nv):
            lines += [f"  %co{i}_{v} = add i64 %crow{i}, {v * LANES}",
                      f"  %cp{i}_{v} = getelementptr float, ptr %c, i64 %co{i}_{v}",
                      _masked_load(f"%old{i}_{v}", f"%cp{i}_{v}", v),
                      f"  %sum{i}_{v} = fadd <16 x float> %old{i}_{v}, %n{i}_{v}",
                      f"  %st{i}_{v} = select i1 %add, <16 x float> %sum{i}_{v}, "
                      f"<16 x float> %n{i}_{v}",
                      f"  call void @llvm.masked.store.v16f32.p0(<16 x float> %st{i}_{v}, "
                      f"ptr %cp{i}_{v}, i32 4, <16 x i1> %m{v})"]
        lines.append(f"  br label %row{i + 1}" if i + 1 < MR else "  br label %done")
        if i + 1 < MR:
            lines.append(f"row{i + 1}:")
    lines += ["done:", "  ret void", "}"]
    return "\n".join(lines)


_engine: list = []  # the execution engine owns the compiled code: kept for the process


def compile_kernel():
    """Compile :func:`kernel_ir` for the host CPU; the kernel as a ctypes function."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    module = llvm.parse_assembly(kernel_ir())
    module.verify()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=3)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    _engine.append(engine)
    return KERNEL_TYPE(engine.get_function_address("ukr"))


@numba.njit(**compiled.NUMBA_OPTIONS)
def _pack_b(b, p0, kc, out):
    """``b[p0:p0+kc]`` as 32-column panels: ``out[q, p, c] = b[p0 + p, q*32 + c]``
    (zeros past ``b``'s last column)."""
    n = b.shape[1]
    for q in range(out.shape[0]):
        top = min(NR, n - q * NR)
        if b.strides[0] <= b.strides[1]:  # b's columns are contiguous: read along them
            for c in range(top):
                col = b[:, q * NR + c]
                for p in range(kc):
                    out[q, p, c] = col[p0 + p]
        else:
            for p in range(kc):
                for c in range(top):
                    out[q, p, c] = b[p0 + p, q * NR + c]
        for p in range(kc):
            for c in range(top, NR):
                out[q, p, c] = 0.0


@numba.njit(**compiled.NUMBA_OPTIONS)
def _pack_a(a, i0, rows, p0, kc, out):
    """Rows ``i0:i0+rows`` of ``a``'s columns ``p0:p0+kc`` as 12-row panels:
    ``out[q, p, r] = a[i0 + q*12 + r, p0 + p]`` (zeros past ``rows``)."""
    for q in range(out.shape[0]):
        top = min(MR, rows - q * MR)
        for r in range(top):
            for p in range(kc):
                out[q, p, r] = a[i0 + q * MR + r, p0 + p]
        for r in range(max(top, 0), MR):
            for p in range(kc):
                out[q, p, r] = 0.0


def k_blocks(k: int) -> int:
    """How many blocks ``k`` is summed in (``ceil(k / KC)``, of equal size)."""
    return max(1, -(-k // KC))


@numba.njit(**compiled.NUMBA_OPTIONS)
def gemm_driver(ukr, a, b, out, accumulate):
    """``out = a @ b`` (``out += a @ b`` with ``accumulate``): 2-D float32 arrays; ``out``
    with contiguous rows. Blocked as the module docstring says."""
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    ldo = out.strides[0] // 4
    o_base = out.ctypes.data
    # a read in place when one of its axes is contiguous; else packed per block
    a_rows = a.strides[1] == 4 and a.strides[0] % 4 == 0
    a_cols = a.strides[0] == 4 and a.strides[1] % 4 == 0
    b_rows = b.strides[1] == 4 and b.strides[0] % 4 == 0
    blocks = max(1, (k + KC - 1) // KC)
    kmax = (k + blocks - 1) // blocks
    npanels = (n + NR - 1) // NR
    packed_b = np.empty((0 if b_rows else npanels, kmax, NR), np.float32)
    packed_a = np.empty((0 if (a_rows or a_cols) else (MC + MR - 1) // MR, kmax, MR),
                        np.float32)
    if k == 0:
        if not accumulate:
            out[:, :] = 0.0
        return
    for block in range(blocks):
        p0 = block * kmax
        kc = min(kmax, k - p0)
        add = 1 if (accumulate or block > 0) else 0
        if not b_rows:
            _pack_b(b, p0, kc, packed_b)
        for i0 in range(0, m, MC):
            rows = min(MC, m - i0)
            if not (a_rows or a_cols):
                _pack_a(a, i0, rows, p0, kc, packed_a)
            for q in range(npanels):
                j0 = q * NR
                cols = min(NR, n - j0)
                mask0 = (1 << min(cols, LANES)) - 1
                mask1 = (1 << max(cols - LANES, 0)) - 1
                if b_rows:
                    b_at = b.ctypes.data + np.uint64(p0 * b.strides[0] + j0 * 4)
                    ldb = b.strides[0] // 4
                else:
                    b_at = packed_b.ctypes.data + np.uint64(q * kmax * NR * 4)
                    ldb = NR
                for r0 in range(0, rows, MR):
                    if a_rows:
                        a_at = a.ctypes.data + np.uint64((i0 + r0) * a.strides[0] + p0 * 4)
                        sai, sap = a.strides[0] // 4, 1
                    elif a_cols:
                        a_at = a.ctypes.data + np.uint64((i0 + r0) * 4 + p0 * a.strides[1])
                        sai, sap = 1, a.strides[1] // 4
                    else:
                        a_at = packed_a.ctypes.data + np.uint64(r0 * kmax * 4)
                        sai, sap = 1, MR
                    ukr(kc, a_at, sai, sap, b_at, ldb,
                        o_base + np.uint64(((i0 + r0) * ldo + j0) * 4), ldo, add,
                        min(MR, rows - r0), mask0, mask1)
