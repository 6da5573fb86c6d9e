"""Files are encrypted and decrypted in constant memory (ARCHITECTURE.md: memory stays flat)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("_file_memory_probe.py")
MEBIBYTES = 200
MAX_GROWTH_KIB = 64 * 1024
INHERITED_SLACK_KIB = 16 * 1024


@pytest.mark.slow
def test_200_mb_round_trip_in_flat_memory(tmp_path: Path) -> None:
    """A 200 MiB stream must not raise the peak RSS by more than 64 MiB.

    A subprocess measures only the crypto: the test runner's own heap (hypothesis, other
    tests) would hide a leak of this size or make the peak meaningless.
    """
    result = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path), str(MEBIBYTES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    assert figures["size"] == figures["size_out"] == figures["digest_size"] == MEBIBYTES << 20
    assert figures["blob_size"] == figures["expected_blob_size"]
    assert figures["sha_in"] == figures["sha_out"] == figures["digest_sha"]
    growth = figures["rss_after_kib"] - figures["rss_before_kib"]
    assert growth < MAX_GROWTH_KIB, f"peak RSS grew by {growth} KiB"
    if figures["hwm_before_kib"] is not None:
        # ru_maxrss is inherited across exec: make sure the baseline is the probe's own, or
        # a leak smaller than the parent's peak would go unseen.
        assert figures["rss_before_kib"] <= figures["hwm_before_kib"] + INHERITED_SLACK_KIB
        hwm_growth = figures["hwm_after_kib"] - figures["hwm_before_kib"]
        assert hwm_growth < MAX_GROWTH_KIB, f"VmHWM grew by {hwm_growth} KiB"
