"""The `journey` command line. Thin: each module parses one command's options,
wires the parts together and prints.

Every public module of this package registers its commands on `app` when imported;
they are all imported here, so a new command module cannot be forgotten.
"""

import importlib
import pkgutil

from journey.cli._app import app, main

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["app", "main"]
