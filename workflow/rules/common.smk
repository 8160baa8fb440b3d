# Shared helpers and config-derived lists for the rule files.

import os

DATA = config.get("data_root", "data")
SYNTHETIC = [n for n, d in config["datasets"].items() if "synthetic" in d]
REAL = [n for n, d in config["datasets"].items() if "source" in d]


def _alternatives(names):
    return "|".join(names) if names else "(?!x)x"  # a regex that matches nothing
