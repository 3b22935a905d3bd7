from hwgen.ir.graph import Graph, Node, Tensor, sanitize
from hwgen.ir.types import QType

__all__ = ["Graph", "Node", "Tensor", "QType", "sanitize"]
