"""Building blocks of the cost model: the per-op cost record, resource formulas and the memory system.

Op modules (hwgen/ops/<op>.py) state their own cycle and resource formulas in a `cost` method and build them
from the helpers here; hwgen/cost/estimate.py composes them over a graph under a Design.

Resource rules (stated once, used by every op):

- DSP: one multiplier of signed a x b bits takes one DSP when it fits the DSP's multiplier (DSP48E2 27x18,
  DSP58 27x24, either orientation), otherwise ceil(a/27)*ceil(b/18) (best orientation). Multipliers with an
  operand of at most 4 bits go to fabric (a*b LUTs). Packing (Design linear.pack_int8): DSP48E2 computes two
  products w1*x and w2*x that share the operand x as (w1*2^18 + w2)*x, valid when w1 fits 9 bits and each
  product fits an 18-bit field (bits(w) + bits(x) <= 18, e.g. int8 weights times 9-bit zero-point-corrected
  activations); the two products are split and accumulated in fabric (extra LUTs). DSP58 packs three int8
  products in its dot-product mode, valid when both operands are at most 8 bits.
- BRAM_18K: a memory bank of `depth` words of `width` bits takes the best of the 18 Kb aspect ratios
  (1x16K, 2x8K, 4x4K, 9x2K, 18x1K, 36x512): min over (w, d) of ceil(width/w) * ceil(depth/d). An array
  partitioned into B banks costs B times its bank. Banks of at most 64 words or at most 1 Kb go to LUTRAM
  (a LUT6 holds 64 x 1 bit: width * ceil(depth/64) LUTs; registers when depth is 1).
- URAM: 288 Kb blocks, 72 bits x 4096: ceil(width/72) * ceil(depth/4096) per bank. Design memory.storage:
  "uram" puts banks of at least 18 Kb there, "auto" banks of at least 144 Kb (where a URAM wastes no more
  than BRAM would), "bram" never; boards without URAM always use BRAM.
- LUT/FF of arithmetic: a MAC array of M MACs with accumulators of A bits costs M*A LUTs (one A-bit fabric
  adder per MAC: the reduction tree over T_IN and the running sum) and M*(a+b) + outputs*A*(1+log2 T_IN)
  FFs (operand and adder-tree pipeline registers); a requantiser (acc*m0 >> shift, round, saturate) costs the
  DSPs of an A x 32 multiplier, 3*A+60 LUTs and 4*A FFs; an m_axi adapter costs 1500 + 4*bits LUTs and
  2000 + 6*bits FFs; every kernel instance 300 LUTs / 400 FFs of control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from hwgen.boards import Board, Resources

ZERO = Resources()

# --- constants of the stated LUT/FF formulas --------------------------------------------------------------
KERNEL_LUT, KERNEL_FF = 300, 400
AXI_LUT, AXI_LUT_PER_BIT, AXI_FF, AXI_FF_PER_BIT = 1500, 4, 2000, 6
LUTRAM_MAX_DEPTH, LUTRAM_MAX_BITS = 64, 1024
BRAM_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


@dataclass
class Cost:
    """What one node costs under a Design (cycles per image, hardware of its kernel)."""

    node: str
    op: str
    kernel: str                 # hardware instance key: nodes with the same key share that hardware
    cycles: float               # latency of this node alone, per image (loads that do not overlap included)
    compute: float = 0.0        # cycles of the compute loops at II=1
    load: float = 0.0           # weight-loading cycles (stalls included)
    io: float = 0.0             # off-chip activation transfer cycles (intermediates in DRAM)
    depth: float = 0.0          # pipeline depth (fill) in cycles
    macs: float = 0.0
    weight_bytes: float = 0.0   # off-chip weight bytes read per image
    act_bytes: float = 0.0      # off-chip activation bytes read+written per image
    res: Resources = ZERO       # hardware this node needs (a shared kernel is sized for the largest user)
    rows: float = 1.0           # output granules streamed to a dataflow consumer
    blocking: bool = False      # consumes its whole input before producing anything
    streams: bool = True        # its output appears granule by granule (else only at the end)
    view: bool = False          # pure addressing (reshape, transpose...): no cycles of its own
    uses: tuple = ()            # further kernels it occupies while it runs (a MoE uses the linear kernel)
    children: tuple = ()        # sub-costs (MoE gate and experts)
    formula: str = ""

    def nonzero(self) -> bool:
        return self.cycles > 0 or self.macs > 0 or any(v > 0 for v in self.res.as_dict().values())

    def renamed(self, node: str, kernel: str | None = None) -> "Cost":
        return replace(self, node=node, kernel=kernel or self.kernel)


# --- arithmetic resources -----------------------------------------------------------------------------------
def dsp_per_mult(a_bits: int, b_bits: int, board: Board) -> int:
    """DSPs of one signed a x b multiplier (0: fabric multiplier)."""
    if min(a_bits, b_bits) <= 4:
        return 0
    wa, wb = board.dsp_widths
    if (a_bits <= wa and b_bits <= wb) or (b_bits <= wa and a_bits <= wb):
        return 1
    return min(math.ceil(a_bits / wa) * math.ceil(b_bits / wb), math.ceil(b_bits / wa) * math.ceil(a_bits / wb))


def packable(a_bits: int, b_bits: int, board: Board) -> bool:
    """Whether products of these widths may share a DSP (see the module docstring)."""
    if board.int8_macs_per_dsp >= 3:
        return a_bits <= 8 and b_bits <= 8
    return min(a_bits, b_bits) <= 9 and a_bits + b_bits <= 18


def mac_array(macs: float, a_bits: int, b_bits: int, acc_bits: int, board: Board, pack: bool = False,
              outputs: float | None = None, reduce: int = 1) -> Resources:
    """DSP/LUT/FF of `macs` parallel multiply-accumulates of a x b bits into `acc_bits` accumulators.

    `outputs` accumulators (default `macs`) each reduce `reduce` products per cycle."""
    if macs <= 0:
        return ZERO
    outputs = macs if outputs is None else outputs
    per = dsp_per_mult(a_bits, b_bits, board)
    lut = macs * acc_bits
    ff = macs * (a_bits + b_bits) + outputs * acc_bits * (1 + math.ceil(math.log2(max(reduce, 1))))
    if per == 0:
        lut += macs * a_bits * b_bits
        dsp = 0.0
    elif pack and packable(a_bits, b_bits, board):
        dsp = math.ceil(macs / board.int8_macs_per_dsp)
        lut += macs * acc_bits * 0.5  # splitting the packed products, correction of the low field's sign
    else:
        dsp = macs * per
    return Resources(lut=lut, ff=ff, dsp=dsp)


def requantiser(acc_bits: int, board: Board, count: float = 1) -> Resources:
    """acc * m0 >> shift + zero point, rounding and saturation, `count` of them."""
    if count <= 0:
        return ZERO
    return Resources(lut=(3 * acc_bits + 60) * count, ff=4 * acc_bits * count,
                     dsp=dsp_per_mult(acc_bits, 32, board) * count)


def axi_adapter(bits: int, count: int = 1) -> Resources:
    return Resources(lut=(AXI_LUT + AXI_LUT_PER_BIT * bits) * count, ff=(AXI_FF + AXI_FF_PER_BIT * bits) * count)


def control(count: float = 1) -> Resources:
    return Resources(lut=KERNEL_LUT * count, ff=KERNEL_FF * count)


# --- memories ------------------------------------------------------------------------------------------------
def bram18k(width: float, depth: float) -> int:
    """BRAM_18K blocks of one bank of `depth` words x `width` bits (best aspect ratio)."""
    if width <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM_SHAPES)


def uram(width: float, depth: float) -> int:
    if width <= 0 or depth <= 0:
        return 0
    return math.ceil(width / 72) * math.ceil(depth / 4096)


def memory(width: float, depth: float, banks: float = 1, storage: str = "auto", board: Board | None = None,
           copies: int = 1) -> Resources:
    """An on-chip array: `banks` partitions of `depth` words x `width` bits, `copies` of it (ping/pong)."""
    width, depth = math.ceil(width), math.ceil(depth)
    n = banks * copies
    if width <= 0 or depth <= 0 or n <= 0:
        return ZERO
    bits = width * depth
    if depth == 1:
        return Resources(ff=width * n)
    if depth <= LUTRAM_MAX_DEPTH or bits <= LUTRAM_MAX_BITS:
        return Resources(lut=width * math.ceil(depth / 64) * n, ff=width * n * 0.25)
    has_uram = board is not None and board.resources.uram > 0
    if has_uram and ((storage == "uram" and bits >= 18 * 1024) or (storage == "auto" and bits >= 144 * 1024)):
        return Resources(uram=uram(width, depth) * n)
    return Resources(bram18k=bram18k(width, depth) * n)


# --- the memory system ------------------------------------------------------------------------------------
@dataclass
class MemSystem:
    """Off-chip transfers in cycles of the kernel clock.

    ideal: a port moves its full AXI width every cycle, all ports together at most the board's peak
    bandwidth, no latency. realistic: a port moves min(AXI width, the board's port width) times the
    sustained efficiency, all ports together peak*efficiency, and every transfer that is not prefetched
    waits the memory latency first."""

    board: Board
    clock_mhz: float
    realistic: bool = True

    @property
    def efficiency(self) -> float:
        return self.board.mem_efficiency if self.realistic else 1.0

    @property
    def total(self) -> float:
        """Bytes per cycle, all ports."""
        return self.board.bandwidth_gbs * 1e9 / (self.clock_mhz * 1e6) * self.efficiency

    def port(self, axi_bits: int) -> float:
        """Bytes per cycle of one port of `axi_bits`."""
        bits = min(axi_bits, self.board.mem_port_bits) if self.realistic else axi_bits
        return bits / 8 * self.efficiency

    def rate(self, axi_bits: int, ports: int = 1) -> float:
        return min(self.port(axi_bits) * min(ports, self.board.mem_ports), self.total)

    @property
    def latency(self) -> float:
        return self.board.mem_latency_ns * 1e-3 * self.clock_mhz if self.realistic else 0.0

    def transfer(self, nbytes: float, axi_bits: int = 256, ports: int = 1) -> float:
        """Cycles to move `nbytes` as one burst sequence (latency paid once)."""
        if nbytes <= 0:
            return 0.0
        return nbytes / self.rate(axi_bits, ports) + self.latency

    def streams(self, byte_list, axi_bits: int = 256) -> float:
        """Cycles for several concurrent streams, one port each, sharing the total bandwidth."""
        byte_list = [b for b in byte_list if b > 0]
        if not byte_list:
            return 0.0
        per_port = max(b / self.port(axi_bits) for b in byte_list)
        return max(per_port, sum(byte_list) / self.total) + self.latency


@dataclass
class CostContext:
    """Everything a node's cost depends on besides the node: the Design, the board, the memory system,
    what the graph analysis found about the node (attention region, fused into its producer...), and, inside
    a MoE, the fraction of rows an expert sees."""

    design: object
    board: Board
    clock_mhz: float
    mem: MemSystem
    info: dict = field(default_factory=dict)   # node name -> analysis facts
    row_scale: float = 1.0                      # expected fraction of the rows this (sub)graph processes
    prefix: str = ""                            # kernel key prefix (unrolled: per node)
    cache: dict = field(default_factory=dict)   # memoised costs (shared by child contexts)
    knob_cache: dict = field(default_factory=dict)
    estimator: object = None                    # hwgen.cost.estimate.Estimator (subgraphs, schedules)

    @property
    def regime(self) -> str:
        return self.design.regime

    @property
    def unrolled(self) -> bool:
        return self.design.regime == "unrolled"

    def facts(self, node) -> dict:
        return self.info.get(id(node), _EMPTY)

    def knobs(self, node, group: str):
        """The node's knobs of a group: its override, else the design's; in the unrolled regime a node without
        an override is fully parallel (as the code generator makes it)."""
        key = (node.name, group)
        k = self.knob_cache.get(key)
        if k is None:
            over = self.design.overrides.get(node.name, {})
            if group in over:
                k = self.design.knobs_for(node.name, group)
            elif self.unrolled and group in _FULL:
                k = _FULL[group](getattr(self.design, group))
            else:
                k = getattr(self.design, group)
            self.knob_cache[key] = k
        return k

    def kernel(self, base: str, node, signature: str = "") -> str:
        """The hardware instance a node runs on: shared per kind in the streaming regime (one instance per
        distinct knob signature), one per node when unrolled."""
        if self.unrolled:
            return f"{base}:{self.prefix}{node.name}"
        return f"{base}[{signature}]" if signature else base

    def dram_io(self, node) -> bool:
        """Whether this node's activations cross the chip boundary (intermediates in DRAM)."""
        return self.design.memory.intermediates == "dram" and not self.unrolled

    def child(self, row_scale: float, prefix: str = "") -> "CostContext":
        return CostContext(self.design, self.board, self.clock_mhz, self.mem, self.info, self.row_scale * row_scale,
                           self.prefix + prefix, self.cache, self.knob_cache, self.estimator)


_EMPTY: dict = {}
_FULL = {
    "elementwise": lambda k: replace(k, par=4096),
    "attention": lambda k: replace(k, rows=4096, dot=None, kv_buffer=True),
}


# --- small shared formulas -------------------------------------------------------------------------------------
def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b - 1e-9)) if b > 0 else 0


def groups(rows: float, lanes: int) -> float:
    """Groups of `lanes` rows: ceil(rows/lanes) for whole rows; for an expected (fractional) row count the
    expected number of groups, rows/lanes + (lanes-1)/(2*lanes) (remainders uniformly distributed)."""
    if lanes <= 1:
        return rows
    if abs(rows - round(rows)) < 1e-9:
        return math.ceil(round(rows) / lanes)
    return rows / lanes + (lanes - 1) / (2 * lanes)


def op_bits(qtype) -> int:
    """Bits of one stored element (float inputs from the host: 32)."""
    return 32 if qtype is None or qtype.is_float else int(qtype.bits)


def centred_bits(qtype) -> int:
    """Bits of q - zero_point as the kernels compute it (one more bit when the zero point is not 0)."""
    b = op_bits(qtype)
    if qtype is not None and not qtype.is_float and qtype.has_zero_point:
        b += 1
    return b


def act_io(ctx: CostContext, node, in_bytes: list, out_bytes: list) -> tuple[float, float]:
    """(cycles, bytes) of a node's activation traffic when intermediates live in DRAM: every input and
    output is its own m_axi stream at the design's AXI width, all sharing the total bandwidth."""
    if not ctx.dram_io(node):
        return 0.0, 0.0
    streams = list(in_bytes) + list(out_bytes)
    return ctx.mem.streams(streams, ctx.design.memory.axi_bits), float(sum(streams))


def elementwise(ctx: CostContext, node, op: str, kernel: str, elements: float, lanes: int, lane_res: Resources,
                depth: float, rows: float, in_bytes=(), out_bytes=(), extra: Resources = ZERO,
                formula: str = "", blocking: bool = False, row_cycles: float = 0.0) -> Cost:
    """A streaming kernel doing `lanes` elements per cycle: cycles = ceil(elements/lanes) + row_cycles +
    depth, overlapped with its DRAM traffic when intermediates are off chip."""
    if elements > 0:
        lanes = max(1, min(lanes, math.ceil(elements)))
    compute = math.ceil(elements / max(lanes, 1)) + row_cycles
    io, ab = act_io(ctx, node, in_bytes, out_bytes)
    res = lane_res.scale(lanes) + extra + control()
    cycles = max(compute, io) + depth
    return Cost(node.name, op, kernel, cycles, compute=compute, io=io, depth=depth, act_bytes=ab, res=res,
                rows=max(rows, 1.0), blocking=blocking, formula=formula)


def default_context(design, board: Board, realistic: bool = True) -> CostContext:
    """A context for costing one node on its own (no graph analysis: no fusion with its neighbours)."""
    from hwgen.cost.estimate import Estimator

    return Estimator(design, board, realistic).ctx
