"""Performance and resource model: per-op formulas (in each op's module) composed over a graph under a
Design (hwgen.cost.estimate), calibrated against Edge-MoE (hwgen.cost.calibration), checked against Vitis
HLS reports (hwgen.cost.csynth)."""

from hwgen.cost.estimate import Estimate, Estimator, estimate
from hwgen.cost.model import Cost, CostContext, MemSystem

__all__ = ["Cost", "CostContext", "Estimate", "Estimator", "MemSystem", "estimate"]
