"""The bit-accurate simulator: an interpreter over the lowered graph (torch.fx Interpreter style).

Every op computes on integer codes with numpy, vectorised over a batch of images. `run` returns the
graph outputs (codes), optionally every intermediate tensor, and saturation counts per tensor."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from hwgen import numerics_jit
from hwgen.errors import HwgenError
from hwgen.ir import Graph
from hwgen.ir.graph import subgraphs, walk
from hwgen.ops import SimStats, get

BATCH = 256  # images per chunk (the largest; `plan_batch` lowers it when memory is short)
MAX_WORKERS = 4  # chunks simulated at once, in threads
MIN_CHUNK = 32  # smallest chunk a batch is split into for the threads (smaller ones are overhead-bound)
ELEMENT_BYTES = 8  # the simulator holds every value as an int64 code
MARGIN = 2.0  # ops' own temporaries (measured on the bundled models: 1.4x to 2.2x the live tensors)


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    stats: SimStats = field(default_factory=SimStats)


def prepare_inputs(graph: Graph, x) -> dict[str, np.ndarray]:
    """Accept one array for a single-input model or a dict; add the batch axis the simulator uses."""
    if not isinstance(x, dict):
        if len(graph.inputs) != 1:
            raise HwgenError(f"the model has {len(graph.inputs)} inputs; pass a dict of arrays")
        x = {graph.inputs[0]: x}
    feeds = {}
    for name in graph.inputs:
        if name not in x:
            raise HwgenError(f"missing input '{name}'")
        arr = np.asarray(x[name])
        shape = graph.tensors[name].shape
        if arr.shape[1:] == tuple(shape):
            pass
        elif shape and shape[0] == 1 and arr.shape[1:] == tuple(shape[1:]):
            arr = arr.reshape((arr.shape[0],) + tuple(shape))
        elif arr.shape == tuple(shape):
            arr = arr[None]
        else:
            raise HwgenError(f"input '{name}' has shape {list(arr.shape)}; the model expects {list(shape)} "
                             "(optionally with a leading batch of images)")
        feeds[name] = _as_input_codes(graph, name, arr)
    return feeds


def _as_input_codes(graph: Graph, name: str, arr: np.ndarray) -> np.ndarray:
    """Float inputs as given (their quantize node converts them); integer inputs (token ids) must hold
    whole numbers, and become int64."""
    qt = graph.tensors[name].qtype
    if qt is None or qt.is_float:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        as_int = np.rint(arr)
        if not np.all(np.isfinite(arr)) or np.any(as_int != arr):
            raise HwgenError(f"input '{name}' takes integers (e.g. token ids); got non-integer values")
        arr = as_int
    return arr.astype(np.int64)


def run(graph: Graph, x, keep: bool = False, batch_size: int | None = None, workers: int | None = None) -> SimResult:
    """Simulate a batch of inputs in chunks of `batch_size` images (None: the largest chunk up to BATCH
    that fits in the available memory, see `plan_batch`; a HwgenError if even one image does not fit),
    `workers` chunks at a time in threads (None: one per core, at most MAX_WORKERS; numpy releases the
    GIL inside its loops, so chunks do run in parallel). Results do not depend on the chunking."""
    feeds = prepare_inputs(graph, x)
    n = next(iter(feeds.values())).shape[0]
    _keep_freed_memory()
    workers = default_workers() if workers is None else max(1, int(workers))
    if batch_size is None:
        batch_size, _ = plan_batch(graph, n, keep=keep, workers=workers)
    if workers > 1 and n <= batch_size * workers:  # split a batch that one chunk would hold across the workers
        batch_size = max(min(batch_size, MIN_CHUNK), -(-n // workers))
    starts = range(0, n, batch_size)
    parts = [{k: v[i:i + batch_size] for k, v in feeds.items()} for i in starts]
    compiled = numerics_jit.wanted(n * _elements_per_image(graph))
    with _single_threaded_blas(), contextlib.nullcontext() if compiled else numerics_jit.disabled():
        if workers > 1 and len(parts) > 1:
            with ThreadPoolExecutor(min(workers, len(parts))) as pool:
                chunks = list(pool.map(lambda part: _run_chunk(graph, part, keep, SimStats()), parts))
        else:
            chunks = [_run_chunk(graph, part, keep, SimStats()) for part in parts]
    stats = SimStats()
    for c in chunks:
        stats.merge(c[2])
    outputs = {k: np.concatenate([c[0][k] for c in chunks]) for k in graph.outputs}
    tensors = {k: np.concatenate([c[1][k] for c in chunks]) for k in chunks[0][1]} if keep else {}
    return SimResult(outputs, tensors, stats)


_BLAS = None
_MALLOC_TUNED = False


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks up to 256 MiB in the heap instead of returning them to the kernel.

    Every op allocates fresh arrays of about a megabyte per chunk; by default glibc serves those with mmap
    and unmaps them on free, so each one page-faults in again (measured: 1.4 ms instead of 0.13 ms for
    an astype and a multiply of 139k elements, and the whole simulator about 1.5x slower). Only on
    glibc; $HWGEN_MALLOC_TUNING=0 leaves the allocator alone. The peak memory is unchanged: what is kept
    is reused by the next chunk."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get("HWGEN_MALLOC_TUNING") == "0":
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _single_threaded_blas():
    """The simulator's matmuls are many small GEMMs: a multi-threaded BLAS spends more time waking and
    synchronising its threads than computing (measured 3-4x slower with 2 OpenBLAS threads), and the
    parallelism is over chunks instead."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def default_workers() -> int:
    """Threads for `run`: $HWGEN_SIM_THREADS if set, else one per available core up to MAX_WORKERS."""
    env = os.environ.get("HWGEN_SIM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise HwgenError(f"HWGEN_SIM_THREADS={env!r} is not a number") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))


def _run_chunk(graph: Graph, feeds: dict, keep: bool, stats: SimStats):
    env = dict(feeds)
    for t in graph.tensors.values():
        if t.is_const:
            env[t.name] = t.data
    remaining = _last_uses(graph)
    kept = {}
    for i, node in enumerate(graph.nodes):
        try:
            outs = get(node.op).simulate(graph, node, [env[x] if x else None for x in node.inputs], stats)
        except HwgenError:
            raise
        except Exception as exc:
            raise HwgenError(f"simulation failed: {type(exc).__name__}: {exc}", node=node.name, op=node.op) from exc
        for name, value in zip(node.outputs, outs):
            env[name] = value
            if keep:
                kept[name] = value
        if not keep:
            for name in remaining.get(i, ()):
                env.pop(name, None)
    return {k: env[k] for k in graph.outputs}, kept, stats


def _cached(graph: Graph, key: str, compute):
    """A per-graph value that depends only on the graph's structure (lowering is over when simulating): kept
    in graph.meta with the node list it was computed for, recomputed if the graph changed since."""
    sig = (tuple(map(id, graph.nodes)), len(graph.tensors))
    hit = graph.meta.get("_sim_cache", {}).get(key)
    if hit is not None and hit[0] == sig:
        return hit[1]
    value = compute()
    graph.meta.setdefault("_sim_cache", {})[key] = (sig, value)
    return value


def _elements_per_image(graph: Graph) -> int:
    """Elements of every node output for one image: the simulator's work, roughly."""
    return _cached(graph, "elements", lambda: sum(graph.tensors[o].size for nd in graph.nodes for o in nd.outputs if o))


def _last_uses(graph: Graph) -> dict[int, list[str]]:
    """Free each intermediate after its last reader (keeps memory flat for big models)."""
    return _cached(graph, "last_uses", lambda: _compute_last_uses(graph))


def _compute_last_uses(graph: Graph) -> dict[int, list[str]]:
    last = {}
    for i, node in enumerate(graph.nodes):
        for x in node.inputs:
            if x and not graph.tensors[x].is_const:
                last[x] = i
    keep = set(graph.outputs) | set(graph.inputs)
    out: dict[int, list[str]] = {}
    for name, i in last.items():
        if name not in keep:
            out.setdefault(i, []).append(name)
    return out


def dequantize_outputs(graph: Graph, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    res = {}
    for name, codes in outputs.items():
        qt = graph.tensors[name].qtype
        res[name] = qt.dequantize(codes, None if qt.axis is None else qt.axis + 1)
    return res


# ---- memory ---------------------------------------------------------------------------------------

def _const_bytes(graph: Graph) -> int:
    return _cached(graph, "const_bytes", lambda: _compute_const_bytes(graph))


def _compute_const_bytes(graph: Graph) -> int:
    seen, total = set(), 0
    for g in [graph] + [sg for _, n in walk(graph) for sg in subgraphs(n)]:
        for t in g.tensors.values():
            if t.is_const and id(t.data) not in seen:
                seen.add(id(t.data))
                total += int(np.asarray(t.data).nbytes)
    return total


def _peak_elements(graph: Graph, keep: bool = False) -> int:
    return _cached(graph, f"peak_elements_{keep}", lambda: _compute_peak_elements(graph, keep))


def _compute_peak_elements(graph: Graph, keep: bool = False) -> int:
    """Elements of one image live at the peak of `_run_chunk`: the inputs, every output from its producer
    to its last reader (`_last_uses`; outputs and never-read tensors stay), a node's inputs and outputs
    together, and a node's subgraphs (MoE gate and experts: run on all its rows) at their own peak."""
    size = {name: t.size for name, t in graph.tensors.items() if not t.is_const}
    last = _last_uses(graph)
    live = sum(size.get(i, 0) for i in graph.inputs)
    peak = live
    for i, node in enumerate(graph.nodes):
        outs = sum(size.get(o, 0) for o in node.outputs if o)
        inner = 0
        for sg in subgraphs(node):
            first = next((x for x in node.inputs if x and x in size), None)
            sg_in = sum(sg.tensors[x].size for x in sg.inputs) or 1
            per_image = (size[first] / sg_in) if first else 1.0
            inner = max(inner, int(np.ceil(_peak_elements(sg) * max(per_image, 1.0))))
        peak = max(peak, live + outs + inner)
        live += outs
        if not keep:
            live -= sum(size.get(name, 0) for name in last.get(i, ()))
    return int(peak)


def estimate_memory(graph: Graph, batch: int, keep: bool = False) -> int:
    """Bytes `run` needs for one chunk of `batch` images: the constants, plus the intermediate tensors live at
    the peak as int64 codes (each freed after its last reader unless `keep`). Op-internal temporaries are
    not counted: treat the result as a lower bound with a margin of a few tens of percent."""
    return _const_bytes(graph) + ELEMENT_BYTES * int(batch) * _peak_elements(graph, keep)


def _run_bytes(graph: Graph, n: int, keep: bool) -> int:
    """What accumulates over all chunks: the inputs, the outputs (everything with `keep`), concatenated."""
    sizes = {name: t.size for name, t in graph.tensors.items() if not t.is_const}
    held = sum(sizes.values()) if keep else sum(sizes.get(o, 0) for o in graph.outputs)
    return ELEMENT_BYTES * int(n) * (sum(sizes.get(i, 0) for i in graph.inputs) + 2 * held)


def _parse_bytes(text: str) -> int | None:
    text = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if mult > 1 else text) * mult)
    except ValueError:
        return None


def available_memory() -> int:
    """Bytes this process may still allocate: the system's available memory, capped by a cgroup limit, an
    address-space rlimit and $HWGEN_MEMORY_LIMIT (e.g. 2G) when set."""
    import psutil

    avail = int(psutil.virtual_memory().available)
    try:
        raw = open("/sys/fs/cgroup/memory.max").read().strip()
        if raw != "max":
            used = int(open("/sys/fs/cgroup/memory.current").read().strip())
            avail = min(avail, max(0, int(raw) - used))
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            avail = min(avail, max(0, soft - psutil.Process().memory_info().vms))
    except (ImportError, OSError, ValueError):
        pass
    env = os.environ.get("HWGEN_MEMORY_LIMIT")
    if env:
        limit = _parse_bytes(env)
        if limit is None:
            raise HwgenError(f"HWGEN_MEMORY_LIMIT={env!r} is not a size (e.g. 512M, 4G)")
        avail = min(avail, limit)
    return avail


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def plan_batch(graph: Graph, n: int, keep: bool = False, batch_size: int = BATCH, extra: int = 0,
               available: int | None = None, workers: int = 1) -> tuple[int, int]:
    """(chunk, bytes): the largest chunk (<= batch_size) whose estimate (times MARGIN for the ops'
    temporaries; `workers` chunks live at once), plus what accumulates over the run and `extra` bytes of the
    caller's, fits in the available memory, and those bytes. Raises a HwgenError saying how much is needed
    when even one image at a time does not fit."""
    avail = available_memory() if available is None else available
    fixed = _run_bytes(graph, n, keep) + int(extra)
    chunk = max(1, min(int(n) or 1, int(batch_size)))

    consts = _const_bytes(graph)

    def need_for(c: int) -> int:
        return int(MARGIN * (consts + max(1, workers) * (estimate_memory(graph, c, keep) - consts))) + fixed

    need = need_for(chunk)
    while need > avail and chunk > 1:
        chunk = max(1, chunk // 2)
        need = need_for(chunk)
    if need > avail:
        per_image = int(MARGIN * ELEMENT_BYTES * _peak_elements(graph, keep))
        raise HwgenError(f"simulating {n} input(s) needs about {format_bytes(need)} of memory "
                         f"({format_bytes(per_image)} per input at the peak, {format_bytes(_const_bytes(graph))} of "
                         f"constants) but only {format_bytes(avail)} is available; use a smaller --limit")
    return chunk, need
