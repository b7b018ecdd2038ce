"""Where the benchmarks find the development data sets and write their work (a checkout's
layout: the shared data beside the repository, runs in the ignored ``var/``)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PBC = SHARED_DATA / "pbc"
BCCD = SHARED_DATA / "bccd"
BIONET = SHARED_DATA / "bionet"
LISC = SHARED_DATA / "lisc"
WORK = ROOT / "var"
