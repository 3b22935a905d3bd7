"""Subcommands beyond inspect/simulate, one module each; each registers itself on hwgen.cli.main.

Modules are imported if present, so independent features (build, csim, estimate, search) plug in
without touching cli.py."""

import importlib
import pkgutil

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_mod}")
