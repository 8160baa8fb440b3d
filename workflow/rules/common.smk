# Shared helpers and config-derived lists for the rule files.

import os

DATA = config.get("data_root", "data")
# the package sources, declared as rule inputs so a code change reruns what it affects
CODE = os.path.relpath(os.path.join(workflow.basedir, "src", "camrepro"))
SYNTHETIC = [n for n, d in config["datasets"].items() if "synthetic" in d]
REAL = [n for n, d in config["datasets"].items() if "source" in d]


def _alternatives(names):
    return "|".join(names) if names else "(?!x)x"  # a regex that matches nothing
