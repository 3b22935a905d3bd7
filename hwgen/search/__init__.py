"""Design-space search over resource budgets: hwgen.search.engine (two-stage heuristic, exhaustive check,
Pareto front), hwgen.search.space (the knobs and their legal values), hwgen.search.plot (the front as PNG)."""

from hwgen.search.engine import (DEFAULT_BUDGET, Evaluator, Result, SearchResult, exhaustive, parse_budget,
                                 pareto_front, search)
from hwgen.search.space import Space

__all__ = ["DEFAULT_BUDGET", "Evaluator", "Result", "SearchResult", "Space", "exhaustive", "parse_budget",
           "pareto_front", "search"]
