"""The monitor's randomness (monitor/entropy.c) on the build machine: the Zkr seed CSR's states,
health tests and HMAC_DRBG (SHA-256), against fake seed sources (monitor/test_entropy.c).

Issue 13, finding 5: raw seed output was used unconditioned and DEAD spun for ever. The C side
checks the typed failures (DEAD final after one read, WAIT bounded, repeated or replayed samples
refused); this side recomputes the DRBG's output for a known source with an independent HMAC_DRBG
(SP 800-90A §10.1.2) built on Python's hmac."""
from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "monitor"
RAW_WORDS = 128


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler")
    exe = tmp_path_factory.mktemp("entropy") / "test_entropy"
    subprocess.run([cc, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{MON}", f"-I{ROOT / 'include'}",
                    str(MON / "test_entropy.c"), str(MON / "entropy.c"), str(MON / "sha256.c"), "-o", str(exe)],
                   check=True)
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_typed_failures_and_health_tests(run):
    lines = run.splitlines()
    assert lines[-1] == "all ok", run
    assert not [l for l in lines if l.startswith("FAIL")], run
    assert sum(l.startswith("ok ") for l in lines) == 17, run


class GoodSource:
    """monitor/test_entropy.c's good(): BIST on the first read, WAIT every 7th, else xorshift64."""

    def __init__(self) -> None:
        self.xs, self.reads = 1, 0

    def batch(self) -> bytes:
        out = b""
        while len(out) < 2 * RAW_WORDS:
            self.reads += 1
            if self.reads == 1 or self.reads % 7 == 0:
                continue
            x = self.xs
            x ^= (x << 13) & (2**64 - 1)
            x ^= x >> 7
            x ^= (x << 17) & (2**64 - 1)
            self.xs = x
            out += (x & 0xFFFF).to_bytes(2, "little")
        return out


class HmacDrbg:
    """SP 800-90A HMAC_DRBG with SHA-256, reseeded before every request."""

    def __init__(self) -> None:
        self.k, self.v = b"\0" * 32, b"\1" * 32

    def _h(self, k: bytes, m: bytes) -> bytes:
        return hmac.new(k, m, hashlib.sha256).digest()

    def update(self, data: bytes = b"") -> None:
        self.k = self._h(self.k, self.v + b"\0" + data)
        self.v = self._h(self.k, self.v)
        if data:
            self.k = self._h(self.k, self.v + b"\1" + data)
            self.v = self._h(self.k, self.v)

    def request(self, seed: bytes, n: int) -> bytes:
        self.update(seed)
        out = b""
        while n:
            part, buf = min(n, 65536), b""
            while len(buf) < part:
                self.v = self._h(self.k, self.v)
                buf += self.v
            out += buf[:part]
            self.update()
            n -= part
        return out


def test_drbg_matches_an_independent_hmac_drbg(run):
    got = [l.split()[1:] for l in run.splitlines() if l.startswith("drbg ")][0]
    src, d = GoodSource(), HmacDrbg()
    first = d.request(src.batch(), 40)
    second = d.request(src.batch(), 70000 - 40)
    assert got[0] == first.hex()
    assert got[1] == second[65536:65576].hex()
