"""The package's lazy exports stay the functions they name, whatever was imported first."""

from __future__ import annotations

import subprocess
import sys


def test_function_exports_are_not_shadowed_by_their_modules() -> None:
    # A fresh interpreter: importing SeedSet and CampaignResult loads the modules that
    # define imm and simulate, which once set those names on the package to the modules.
    code = (
        "import types\n"
        "from budding.influence import CampaignResult, SeedSet\n"
        "from budding.influence import imm, simulate\n"
        "import budding.influence as bi\n"
        "for f in (imm, simulate, bi.imm, bi.simulate):\n"
        "    assert not isinstance(f, types.ModuleType), f\n"
        "    assert callable(f), f\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
