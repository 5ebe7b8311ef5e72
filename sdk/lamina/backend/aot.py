"""Lamina's kernels compiled ahead of time, run without numba in the process.

numba compiles a kernel on its first call in a process and caches the machine code on
disk, but loading that cache still brings numba and LLVM into the process: ~0.8 s and
~135 MB of resident memory (the LLVM library's pages alone are ~34 MB; numba's typing
and target contexts tens of MB of Python objects) in every process that trains, each
replica of a job included, against ~20 MB for the kernels' actual work.

``lamina warm`` (:func:`lamina.backend.warm.warm`) therefore also builds a shared
library from the overloads it compiled (:func:`build`), and a later process loads that
library with ``ctypes`` instead of importing numba (:func:`entry`):

* **The code is numba's own.** For each overload, numba's optimised LLVM module (the
  one its JIT runs: same passes, same host CPU and features) is cut down to the native
  function (numba's Python and C wrappers dropped, everything else made internal) and
  compiled to an object file, position-independent, by an LLVM target machine for the
  host. The results are bit-identical to the JIT's (tested).
* **An entry function per overload** takes each array as its numpy object and reads
  the data pointer, shape and strides from numpy's array struct (offsets checked on a
  live array at build and at load), and passes numba's calling convention (the
  array's fields flattened, no meminfo: the caller owns the memory). A kernel without a
  result returns numba's status; one with a scalar result returns it, and stores the
  status through an extra first argument when the kernel may raise. A failed status
  raises ``RuntimeError`` naming the kernel.
* **A minimal runtime** (:data:`RUNTIME_C`) allocates the arrays a kernel makes
  (``np.empty`` inside a kernel) with numba's MemInfo layout. An overload that needs
  anything else from numba's runtime or from Python (BLAS through ``np.dot``, an
  exception object) is left to numba's JIT.
* **Linked by the system's C compiler** (``cc -shared``) into one library next to a
  manifest; a library is used only on a CPU with the same flags and with the same
  kernel sources (their hashes are in the manifest), else numba compiles as before.
* ``ctypes`` releases the GIL for each call, as numba's ``nogil`` does.

    LAMINA_AOT=0          # ignore the library: numba's JIT (or its cache) only
    LAMINA_AOT_DIR=PATH   # where libraries live (default: ~/.cache/lamina/kernels)

A call whose argument types the library has no overload for runs numba's JIT
(numba is imported then, as without a library).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np

from lamina.backend import env

_log = logging.getLogger("lamina.aot")

FORMAT = 1
MANIFEST = "manifest.json"
LIBRARY = "kernels.so"

#: numba's MemInfo (numba/core/runtime/nrt.cpp) and the allocations a kernel's
#: ``np.empty`` makes; the memory goes back with ``free`` when the last view is gone.
RUNTIME_C = r"""
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    size_t refct;
    void (*dtor)(void *, size_t, void *);
    void *dtor_info;
    void *data;
    size_t size;
    void *external_allocator;
} MemInfo;

static MemInfo *lamina_alloc(size_t size, unsigned align) {
    size_t pad = align > 1 ? align - 1 : 0;
    char *base = malloc(sizeof(MemInfo) + size + pad);
    if (base == NULL) return NULL;
    uintptr_t data = (uintptr_t)(base + sizeof(MemInfo));
    if (align > 1) data = (data + align - 1) & ~(uintptr_t)(align - 1);
    MemInfo *mi = (MemInfo *)base;
    mi->refct = 1;
    mi->dtor = NULL;
    mi->dtor_info = NULL;
    mi->data = (void *)data;
    mi->size = size;
    mi->external_allocator = NULL;
    return mi;
}

MemInfo *NRT_MemInfo_alloc_aligned(size_t size, unsigned align) {
    return lamina_alloc(size, align);
}

MemInfo *NRT_MemInfo_alloc_safe_aligned(size_t size, unsigned align) {
    return lamina_alloc(size, align);
}

void NRT_MemInfo_call_dtor(MemInfo *mi) { free(mi); }
"""
RUNTIME_SYMBOLS = frozenset({"NRT_MemInfo_alloc_aligned", "NRT_MemInfo_alloc_safe_aligned",
                             "NRT_MemInfo_call_dtor"})

#: numba's scalar types an entry takes, their ctypes and LLVM types, and the Python types
#: numba gives each (``typeof``): a call matches an overload by these.
SCALARS = {
    "float32": (ctypes.c_float, "float", (np.float32,)),
    "float64": (ctypes.c_double, "double", (float, np.float64)),
    "int64": (ctypes.c_int64, "i64", (int, np.int64)),
    "int32": (ctypes.c_int32, "i32", (np.int32,)),
    "uint64": (ctypes.c_uint64, "i64", (np.uint64,)),
    "uint32": (ctypes.c_uint32, "i32", (np.uint32,)),
    "bool": (ctypes.c_bool, "i8", (bool, np.bool_)),
}
RETURNS = {"none": None, "int64": ctypes.c_int64, "float64": ctypes.c_double}
OK_STATUS = (0, -2)  # numba's call convention: OK, and OK returning None

_state_lock = threading.Lock()  # guards _state: loading, replacing or dropping the library
_state: dict = {}


def directory() -> Path:
    """Where libraries live: ``$LAMINA_AOT_DIR``, else ``~/.cache/lamina/kernels``
    (``$XDG_CACHE_HOME`` respected)."""
    explicit = env.path("LAMINA_AOT_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                              ".cache")
    return Path(cache) / "lamina" / "kernels"


def enabled() -> bool:
    """``LAMINA_AOT`` (default on)."""
    return env.flag("LAMINA_AOT", True)


def cpu_signature() -> str:
    """This machine's architecture, CPU model and flags, hashed (the code is compiled
    for exactly them)."""
    text = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        pass
    first = text.split("\n\n", 1)[0]
    lines = sorted(line for line in first.splitlines()
                   if line.split(":")[0].strip() in ("vendor_id", "model name", "flags",
                                                     "cpu family", "model"))
    return hashlib.sha256("\n".join([platform.machine(), *lines]).encode()).hexdigest()


def _module_file(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise ImportError(name)
    return spec.origin


def sources_hash(modules) -> dict:
    """``{module: sha256 of its source file}``."""
    out = {}
    for name in sorted(modules):
        with open(_module_file(name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def array_offsets() -> tuple[int, int, int]:
    """Byte offsets of ``data``, ``dimensions`` and ``strides`` in numpy's array struct,
    found on a live array (and checked on a second one)."""
    candidates = (16, 32, 40)  # PyObject_HEAD; data; int nd (padded); dims; strides
    for probe in (np.zeros((3, 5), np.float32), np.zeros((7, 2, 4), np.int64)[:, ::2]):
        base = id(probe)
        data = ctypes.c_void_p.from_address(base + candidates[0]).value
        dims = ctypes.c_void_p.from_address(base + candidates[1]).value
        strides = ctypes.c_void_p.from_address(base + candidates[2]).value
        if data != probe.ctypes.data or dims is None or strides is None:
            raise RuntimeError("numpy's array struct is not laid out as expected")
        shape = tuple(ctypes.c_int64.from_address(dims + 8 * i).value
                      for i in range(probe.ndim))
        steps = tuple(ctypes.c_int64.from_address(strides + 8 * i).value
                      for i in range(probe.ndim))
        if shape != probe.shape or steps != probe.strides:
            raise RuntimeError("numpy's array struct is not laid out as expected")
    return candidates


# -- building (numba imported) -----------------------------------------------------------

def _arg_spec(numba_type) -> dict | None:
    """The manifest's description of one argument type, or None when unsupported."""
    from numba.core import types

    if isinstance(numba_type, types.Array):
        if numba_type.dtype.name not in SCALARS or numba_type.layout not in "CFA":
            return None
        return {"kind": "array", "dtype": numba_type.dtype.name, "ndim": numba_type.ndim,
                "layout": numba_type.layout, "readonly": not numba_type.mutable,
                "aligned": bool(numba_type.aligned),
                "itemsize": np.dtype(numba_type.dtype.name).itemsize}
    if isinstance(numba_type, types.ExternalFunctionPointer):
        return {"kind": "pointer"}
    name = "bool" if isinstance(numba_type, types.Boolean) else getattr(numba_type, "name", "")
    if name in SCALARS:
        return {"kind": "scalar", "type": name}
    return None


def _entry_ir(symbol: str, native: str, params: list[str], specs: list[dict],
              returns: str, raises: bool, offsets) -> str:
    """LLVM IR of the entry function ``symbol`` that unpacks numpy arrays and calls the
    native function (whose LLVM parameter types are ``params``)."""
    data_at, dims_at, strides_at = offsets
    lines, body, call_args = [], [], ["ptr %ret", "ptr %exc"]
    entry_params, k = [], 2  # the native's parameters after retptr and excinfo
    if raises and returns != "none":  # the value is returned, the status stored
        entry_params.append("ptr %status.out")
    for i, spec in enumerate(specs):
        if spec["kind"] == "array":
            p = f"%p{i}"
            entry_params.append(f"ptr {p}")
            body += [f"  %d{i}.at = getelementptr i8, ptr {p}, i64 {data_at}",
                     f"  %d{i} = load ptr, ptr %d{i}.at",
                     f"  %s{i}.at = getelementptr i8, ptr {p}, i64 {dims_at}",
                     f"  %s{i} = load ptr, ptr %s{i}.at",
                     f"  %t{i}.at = getelementptr i8, ptr {p}, i64 {strides_at}",
                     f"  %t{i} = load ptr, ptr %t{i}.at"]
            size = "1"
            dims, steps = [], []
            for j in range(spec["ndim"]):
                body += [f"  %s{i}.{j}.at = getelementptr i64, ptr %s{i}, i64 {j}",
                         f"  %s{i}.{j} = load i64, ptr %s{i}.{j}.at",
                         f"  %t{i}.{j}.at = getelementptr i64, ptr %t{i}, i64 {j}",
                         f"  %t{i}.{j} = load i64, ptr %t{i}.{j}.at"]
                body.append(f"  %n{i}.{j} = mul i64 {size}, %s{i}.{j}")
                size = f"%n{i}.{j}"
                dims.append(f"i64 %s{i}.{j}")
                steps.append(f"i64 %t{i}.{j}")
            call_args += ["ptr null", "ptr null", f"i64 {size}", f"i64 {spec['itemsize']}",
                          f"ptr %d{i}", *dims, *steps]
            k += 5 + 2 * spec["ndim"]
        elif spec["kind"] == "pointer":
            entry_params.append(f"ptr %p{i}")
            call_args.append(f"{params[k]} %p{i}")
            k += 1
        else:
            native_type = params[k]
            wide = SCALARS[spec["type"]][1]
            entry_params.append(f"{wide} %p{i}")
            if native_type == wide:
                call_args.append(f"{native_type} %p{i}")
            elif native_type == "i1" and wide == "i8":
                body.append(f"  %b{i} = icmp ne i8 %p{i}, 0")
                call_args.append(f"i1 %b{i}")
            else:
                raise ValueError(f"argument {i}: native {native_type}, entry {wide}")
            k += 1
    if k != len(params):
        raise ValueError(f"flattened {k} parameters against the native {len(params)}")
    result = {"none": "i32", "int64": "i64", "float64": "double"}[returns]
    lines.append(f"declare i32 @\"{native}\"({', '.join(params)})")
    lines.append(f"define {result} @{symbol}({', '.join(entry_params)}) {{")
    lines.append("entry:")
    lines.append("  %ret = alloca [4 x i64], align 16")
    lines.append("  %exc = alloca ptr, align 8")
    lines.append("  store ptr null, ptr %exc")
    lines += body
    lines.append(f"  %status = call i32 @\"{native}\"({', '.join(call_args)})")
    if returns == "none":
        lines.append("  ret i32 %status")
    else:
        if raises:
            lines.append("  store i32 %status, ptr %status.out")
        lines.append(f"  %value = load {result}, ptr %ret")
        lines.append(f"  ret {result} %value")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _resolvable(symbol: str) -> bool:
    """Whether an undefined symbol of a kernel's object resolves without numba or
    Python: an LLVM intrinsic, the minimal runtime, or the C library / libm."""
    if symbol.startswith("llvm.") or symbol in RUNTIME_SYMBOLS:
        return True
    if symbol.startswith(("Py", "_Py", "NRT_", "numba_", "_numba")):
        return False
    for lib in _c_libraries():
        if hasattr(lib, symbol):
            return True
    return False


@functools.cache
def _c_libraries() -> list:
    """The C library and libm, loaded once per build (every overload's undefined
    symbols are looked up in them)."""
    import ctypes.util

    found = [ctypes.CDLL(None)]
    name = ctypes.util.find_library("m")
    if name:
        found.append(ctypes.CDLL(name))
    return found


def _native_params(function) -> list[str]:
    return [str(arg.type) for arg in function.arguments]


def _overload_object(cres, symbol: str, machine, offsets, llvm) -> tuple[bytes, dict] | str:
    """``(object code, manifest entry)`` for one compiled overload, or why it stays on
    numba's JIT."""
    specs = [_arg_spec(t) for t in cres.signature.args]
    if any(s is None for s in specs):
        return "an argument type the entry functions do not take"
    returns = str(cres.signature.return_type)
    if returns not in RETURNS:
        return f"returns {returns}"
    native = cres.fndesc.llvm_func_name
    module = llvm.parse_assembly(cres.library.get_llvm_str())
    function = module.get_function(native)
    text = str(function)
    header, _, body = text.partition("{")
    params = _native_params(function)
    exc_name = header.split(",")[1].split()[-1] if len(params) > 1 else None
    raises = exc_name is not None and exc_name in body
    for f in module.functions:
        if not f.is_declaration and f.name != native:
            f.linkage = "internal"
    entry = llvm.parse_assembly(_entry_ir(symbol, native, params, specs, returns, raises,
                                          offsets))
    module.link_in(entry)
    pto = llvm.create_pipeline_tuning_options(speed_level=0)
    builder = llvm.create_pass_builder(machine, pto)
    passes = llvm.create_new_module_pass_manager()
    passes.add_global_dead_code_eliminate_pass()
    passes.add_strip_dead_prototype_pass()
    passes.run(module, builder)
    missing = sorted(f.name for f in module.functions
                     if f.is_declaration and not _resolvable(f.name))
    if missing:
        return f"needs {', '.join(missing)}"
    module.verify()
    return machine.emit_object(module), {"symbol": symbol, "args": specs, "returns": returns,
                                         "raises": raises}


def _target_machine(llvm):
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, reloc="pic", codemodel="default")


def build(dispatchers: dict, extra_ir: dict | None = None, where: Path | None = None,
          compiler: str | None = None) -> dict:
    """Build the library from ``{qualified name: numba dispatcher}`` (each overload the
    dispatcher compiled so far) and ``{symbol: LLVM IR}`` (functions exported as they
    are, e.g. the GEMM's register kernel). Returns ``{"path", "entries", "skipped"}``.

    Raises:
        RuntimeError: without a C compiler (``cc``), or when linking fails.
    """
    import llvmlite.binding as llvm
    import numba

    named = compiler or os.environ.get("CC") or "cc"
    compiler = shutil.which(named)
    if compiler is None:
        raise RuntimeError(f"no C compiler ({named!r}) to link Lamina's kernel library; "
                           "numba's JIT (and its cache) runs the kernels instead")
    offsets = array_offsets()
    signatures = {name: _signatures(d) for name, d in dispatchers.items() if d.signatures}
    current = _current(where)
    if current is not None and _covers(current["manifest"], signatures) \
            and current["manifest"].get("exported") == {s: s for s in extra_ir or {}}:
        return {"path": current["folder"], "entries": sum(
            len(v) for v in current["manifest"]["entries"].values()),
            "skipped": current["manifest"]["skipped"], "built": False}
    machine = _target_machine(llvm)
    objects, entries, skipped, modules = [], {}, {}, set()
    number = 0
    for name, dispatcher in sorted(dispatchers.items()):
        fresh = numba.njit(**_jit_options())(dispatcher.py_func)
        for signature in _unliteral(dispatcher):
            try:
                fresh.compile(signature)
                cres = fresh.overloads[tuple(signature)]
                made = _overload_object(cres, f"lamina_aot_{number}", machine, offsets, llvm)
            except Exception as exc:  # noqa: BLE001 - the overload stays on the JIT
                made = f"{type(exc).__name__}: {exc}"
            if isinstance(made, str):
                skipped.setdefault(name, []).append(made)
                continue
            code, entry = made
            objects.append(code)
            entries.setdefault(name, []).append(entry)
            modules.add(dispatcher.py_func.__module__)
            number += 1
    exported = {}
    for symbol, ir_text in (extra_ir or {}).items():
        module = llvm.parse_assembly(ir_text)
        module.verify()
        objects.append(machine.emit_object(module))
        exported[symbol] = symbol
    manifest = {"format": FORMAT, "cpu": cpu_signature(), "machine": platform.machine(),
                "offsets": list(offsets), "numpy": np.__version__.split(".")[0],
                "numba": numba.__version__, "sources": sources_hash(modules),
                "entries": entries, "exported": exported, "skipped": skipped,
                "signatures": signatures}
    # A new folder for every build: a process keeps the library it loaded, and dlopen
    # would hand this one the old library again were the path the same.
    target = (where or directory()) / f"{library_key(manifest)}-{uuid.uuid4().hex[:8]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        names = []
        for i, code in enumerate(objects):
            path = work / f"k{i}.o"
            path.write_bytes(code)
            names.append(str(path))
        runtime = work / "runtime.c"
        runtime.write_text(RUNTIME_C)
        done = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o",
                               str(work / LIBRARY), str(runtime), *names, "-lm"],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"linking Lamina's kernel library failed: {done.stderr[-2000:]}")
        for path in names:
            os.unlink(path)
        os.unlink(runtime)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    _remove_superseded(target, manifest["cpu"])
    with _state_lock:
        _state.clear()
    return {"path": str(target), "entries": sum(len(v) for v in entries.values()),
            "skipped": skipped, "built": True}


def _unliteral(dispatcher) -> list[tuple]:
    """The dispatcher's signatures, each once, literal types widened (numba also keeps
    a ``Literal[bool](False)`` specialisation of a call it first typed by value)."""
    from numba.core import types

    found = []
    for signature in dispatcher.signatures:
        plain = tuple(types.unliteral(t) for t in signature)
        if plain not in found:
            found.append(plain)
    return found


def _signatures(dispatcher) -> list[str]:
    return sorted(str(s) for s in _unliteral(dispatcher))


def _covers(manifest: dict, signatures: dict) -> bool:
    """Whether a built library already has every one of ``signatures``."""
    built = manifest.get("signatures", {})
    return all(set(sigs) <= set(built.get(name, ())) for name, sigs in signatures.items())


def _remove_superseded(kept: Path, cpu: str) -> None:
    """Delete the other libraries for this CPU next to ``kept`` (older sources or
    overloads); a process that has one loaded keeps its mapping until it exits."""
    for folder in kept.parent.iterdir():
        if folder == kept or folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("cpu") == cpu:
            shutil.rmtree(folder, ignore_errors=True)


def _jit_options() -> dict:
    from lamina.backend import compiled

    return {k: v for k, v in compiled.NUMBA_OPTIONS.items() if k != "cache"}


def library_key(manifest: dict) -> str:
    """The start of the library's folder name: its CPU and its sources."""
    text = json.dumps([manifest["format"], manifest["cpu"], manifest["sources"]],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# -- loading (no numba) ------------------------------------------------------------------

class _Overload:
    """One overload's ctypes function; ``raises``: a value-returning kernel that may
    raise, whose entry stores numba's status through its first argument."""

    __slots__ = ("call", "returns", "raises")

    def __init__(self, function, returns, raises):
        self.call, self.returns, self.raises = function, returns, raises


class Entry:
    """One kernel's overloads in the library; calling it runs the overload that matches
    the arguments' types, or ``fallback`` (numba's JIT) when none does."""

    def __init__(self, name: str, overloads: dict, fallback=None, counts=None):
        self.name = name
        self.overloads = overloads  # key -> _Overload
        self.fallback = fallback
        self.counts = [0, 0] if counts is None else counts  # shared with its copies

    @property
    def calls(self) -> int:
        """Calls the library ran (this entry and its :meth:`with_fallback` copies)."""
        return self.counts[0]

    @property
    def misses(self) -> int:
        """Calls no overload matched (run by the fallback, or refused)."""
        return self.counts[1]

    def with_fallback(self, fallback) -> Entry:
        """This entry, running ``fallback`` for argument types it has no overload for."""
        return Entry(self.name, self.overloads, fallback, self.counts)

    def find(self, args):
        """The matching overload for ``args``, or None."""
        key = tuple(map(_arg_key, args))
        return self.overloads.get(key) or self._learn(key)

    def _learn(self, key: tuple):
        """The overload for a key first seen: its ctypes function types read as
        "pointer"; remembered under the key as seen (None when none matches)."""
        found = self.overloads.get(tuple(
            "pointer" if isinstance(k, type) and issubclass(k, _FUNCTION_POINTER) else k
            for k in key))
        if found is not None:
            self.overloads[key] = found
        return found

    def __call__(self, *args):
        key = tuple(map(_arg_key, args))
        found = self.overloads.get(key)
        if found is None:
            found = self._learn(key)
            if found is None:
                self.counts[1] += 1
                if self.fallback is None:
                    raise TypeError(f"{self.name}: no compiled overload for {list(key)}")
                return self.fallback(*args)
        self.counts[0] += 1
        if found.raises:  # a value, and the status through a pointer
            status = ctypes.c_int32(0)
            result = found.call(ctypes.byref(status), *args)
            if status.value not in OK_STATUS:
                raise _failed(self.name, status.value)
            return result
        result = found.call(*args)
        if found.returns is None:
            if result not in OK_STATUS:
                raise _failed(self.name, result)
            return None
        return result


def _failed(name: str, status: int) -> RuntimeError:
    return RuntimeError(f"Lamina's kernel {name} failed inside its compiled code (numba "
                        f"status {status}); LAMINA_AOT=0 runs numba's JIT, which names "
                        "the error")


_FUNCTION_POINTER = ctypes.CFUNCTYPE(None).__mro__[1]  # ctypes' function-pointer base
#: numpy's array flags an overload depends on: C and F contiguity (numba's layout),
#: alignment and writeability.
_C, _F, _ALIGNED, _WRITEABLE = 0x1, 0x2, 0x100, 0x400
_FLAG_BITS = _C | _F | _ALIGNED | _WRITEABLE


def _arg_key(value, ndarray=np.ndarray):
    """What an overload must have been compiled for to take ``value`` (numba's
    ``typeof``): an array's dtype, dimensions and flags (layout, alignment,
    writeability); anything else's type."""
    if type(value) is ndarray:
        return (value.dtype, value.ndim, value.flags.num & _FLAG_BITS)
    return type(value)


def _keys(spec: dict) -> list:
    """Every :func:`_arg_key` an argument of this spec may have."""
    if spec["kind"] == "array":
        contiguity = {"C": (_C, _C | _F), "F": (_F,), "A": (0,)}[spec["layout"]]
        rest = (_ALIGNED if spec["aligned"] else 0) | (0 if spec["readonly"] else _WRITEABLE)
        return [(np.dtype(spec["dtype"]), spec["ndim"], bits | rest) for bits in contiguity]
    if spec["kind"] == "pointer":
        return ["pointer"]
    return list(SCALARS[spec["type"]][2])


def _argtype(spec: dict):
    if spec["kind"] == "array":
        return ctypes.py_object
    if spec["kind"] == "pointer":
        return ctypes.c_void_p
    return SCALARS[spec["type"]][0]


def _current(where: Path | None = None) -> dict | None:
    """``{"folder", "manifest"}`` of the library for this machine and these sources in
    ``where`` (default :func:`directory`), or None."""
    if not sys.platform.startswith("linux"):
        return None
    root = where or directory()
    if not root.is_dir():
        return None
    cpu = cpu_signature()

    def built_at(folder: Path) -> float:
        try:
            return (folder / MANIFEST).stat().st_mtime
        except OSError:  # not a library, or removed meanwhile by a newer build
            return -1.0

    stamped = [(built_at(f), f) for f in root.iterdir()]
    for _, folder in sorted((s for s in stamped if s[0] >= 0), reverse=True):  # newest first
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("format") != FORMAT or manifest.get("cpu") != cpu:
                continue
            if manifest.get("numpy") != np.__version__.split(".")[0]:
                continue
            if sources_hash(manifest["sources"]) != manifest["sources"]:
                continue
            if tuple(manifest["offsets"]) != array_offsets():
                continue
            if not (folder / LIBRARY).is_file():
                continue
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            _log.debug("kernel library %s not used: %s", folder, exc)
            continue
        return {"folder": str(folder), "manifest": manifest}
    return None


def _load() -> dict | None:
    """``{"library", "folder", "entries": {name: Entry}, "exported": {symbol: address}}``
    for this machine and these sources, or None."""
    if not enabled():
        return None
    current = _current()
    if current is None:
        return None
    try:
        library = ctypes.CDLL(os.path.join(current["folder"], LIBRARY))
        return _bind(library, current["manifest"], Path(current["folder"]))
    except (OSError, AttributeError, KeyError) as exc:
        _log.warning("Lamina's kernel library %s could not be loaded (%s); numba's JIT "
                     "runs the kernels", current["folder"], exc)
        return None


def _bind(library, manifest: dict, folder: Path) -> dict:
    import itertools

    entries = {}
    for name, overloads in manifest["entries"].items():
        table = {}
        for item in overloads:
            function = getattr(library, item["symbol"])
            status = item["raises"] and item["returns"] != "none"
            function.argtypes = ([ctypes.c_void_p] if status else []) + [
                _argtype(s) for s in item["args"]]
            function.restype = RETURNS[item["returns"]] or ctypes.c_int32
            returns = RETURNS[item["returns"]]
            overload = _Overload(function, returns, status)
            for key in itertools.product(*(_keys(s) for s in item["args"])):
                table.setdefault(key, overload)
        entries[name] = Entry(name, table)
    exported = {symbol: ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value
                for symbol in manifest.get("exported", {})}
    return {"library": library, "folder": str(folder), "entries": entries,
            "exported": exported}


def library() -> dict | None:
    """The loaded library for this process (loaded once), or None."""
    if "loaded" not in _state:
        with _state_lock:
            if "loaded" not in _state:
                _state["loaded"] = _load()
    return _state["loaded"]


def entry(name: str) -> Entry | None:
    """The library's :class:`Entry` for the kernel ``name`` (``module.qualname``)."""
    found = library()
    return None if found is None else found["entries"].get(name)


def exported(symbol: str) -> int | None:
    """The address of an exported function of the library (e.g. the GEMM's register
    kernel), or None."""
    found = library()
    return None if found is None else found["exported"].get(symbol)


def describe() -> str:
    """Where this process's compiled kernels come from, in a few words (for logs and
    benchmark headers)."""
    from lamina.backend import compiled

    if compiled.choice() == "numpy":
        return "off (LAMINA_KERNELS=numpy)"
    if not enabled():
        return "numba's JIT (LAMINA_AOT=0)"
    found = library()
    if found is None:
        return (f"numba's JIT (no ahead-of-time library for this CPU and these sources in "
                f"{directory()}: lamina warm builds one)")
    count = sum(len({id(o) for o in e.overloads.values()}) for e in found["entries"].values())
    return (f"the ahead-of-time library {found['folder']} ({count} overloads; numba's JIT "
            "for any other)")


class disabled:  # noqa: N801 - a context manager, used like a function
    """Within the block, no library is used (``lamina warm`` compiles with numba's JIT,
    whose overloads it then builds from); after it, the library is looked up again."""

    def __enter__(self):
        with _state_lock:
            _state["loaded"] = None

    def __exit__(self, *exc):
        with _state_lock:
            _state.clear()


def reset() -> None:
    """Forget the loaded library (tests; after :func:`build`)."""
    with _state_lock:
        _state.clear()
