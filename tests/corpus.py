"""Test corpora built from the real NTU files (distinct names, real content)."""

import shutil
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ntu"


def renamed_copies(dst: Path, n: int) -> list[Path]:
    """n (< 4080) files: the real files cycled under unique NTU-60 names, spread over setups,
    cameras and performers so that every split part is non-empty."""
    real = sorted(REAL.glob("*.skeleton"))
    if not real:  # like the shared_data fixture: a machine without ../shared skips
        pytest.skip(f"real NTU files not found at {REAL}")
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = real[i % len(real)]
        setup, camera = 1 + i % 17, 1 + (i // 17) % 3
        subject, rep = 1 + (i // 51) % 40 if n > 51 else 1 + (i * 7) % 40, 1 + (i // 2040) % 2
        name = f"S{setup:03d}C{camera:03d}P{subject:03d}R{rep:03d}{src.name[16:20]}.skeleton"
        shutil.copyfile(src, dst / name)
        out.append(dst / name)
    return out
