"""`onboardd serve` settles its heap once started (onboardd.daemon.settle_heap)."""

from __future__ import annotations

import subprocess
import sys


def test_settle_heap_freezes_start_up_and_makes_young_passes_rarer() -> None:
    # In a process of its own: freezing pytest's heap would outlive this test.
    code = ("import gc; from onboardd.daemon import HEAP_THRESHOLDS, settle_heap; "
            "settle_heap(); print(gc.get_freeze_count(), gc.get_threshold() == HEAP_THRESHOLDS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    frozen, thresholds = out.stdout.split()
    assert int(frozen) > 10_000  # the imported modules and what they hold
    assert thresholds == "True"
