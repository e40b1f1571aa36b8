"""CUDA's torch.randn (Philox4x32-10 + Box-Muller) drawn on any device, as A1111's "NV" RNG source draws it."""

from __future__ import annotations

import math

import numpy as np

# Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011): the two round
# multipliers and the two Weyl key bumps, as curand and A1111's rng_philox.py use them.
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
ROUNDS = 10

# curand's CURAND_2POW32_INV and CURAND_2POW32_INV_2PI, rounded to float32 as curand (and A1111's
# rng_philox.py) hold them; the arithmetic is then done in float64 and rounded once to float32, which
# is what A1111's numpy code does (uint32 array * float32 array promotes to float64).
_INV32 = float(np.float32(2.3283064e-10))
_INV32_2PI = float(np.float32(2.3283064e-10 * 6.2831855))


def _mulhilo(a: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The high and low 32 bits of a * m (a uint32 array): uint64 products wrap nowhere below 2**64."""
    product = a.astype(np.uint64) * np.uint64(m)
    return (product >> np.uint64(32)).astype(np.uint32), product.astype(np.uint32)


def philox4x32_10(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of a (4, N) uint32 counter array under one 64-bit key (lo, hi): (4, N) uint32 out."""
    c0, c1, c2, c3 = (np.array(part, dtype=np.uint32) for part in counter)
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):  # the key bumps wrap mod 2**32 by definition
        for round_ in range(ROUNDS):
            hi0, lo0 = _mulhilo(c0, PHILOX_M[0])
            hi1, lo1 = _mulhilo(c2, PHILOX_M[1])
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
            if round_ < ROUNDS - 1:
                k0, k1 = np.uint32(k0 + np.uint32(PHILOX_W[0])), np.uint32(k1 + np.uint32(PHILOX_W[1]))
    return np.stack([c0, c1, c2, c3])


def box_muller(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """curand's _curand_box_muller: two uint32 words -> (s·sin v, s·cos v), u and v offset by half a step
    so that neither is ever 0 (log(0) cannot happen)."""
    u = x.astype(np.float64) * _INV32 + _INV32 / 2
    v = y.astype(np.float64) * _INV32_2PI + _INV32_2PI / 2
    s = np.sqrt(-2.0 * np.log(u))
    return (s * np.sin(v)).astype(np.float32), (s * np.cos(v)).astype(np.float32)


def _split_seed(seed: int) -> tuple[int, int]:
    # curand_init takes the 64-bit seed as key (lo, hi); torch's generator seeds are 64-bit unsigned.
    seed = int(seed) % (1 << 64)
    return seed & 0xFFFFFFFF, seed >> 32


class PhiloxGenerator:
    """One generator, like a `torch.Generator('cuda').manual_seed(seed)`: each `randn` call is one
    torch.randn call and moves the Philox offset on by what that call consumed.

    Layout (torch's distribution_elementwise_grid_stride_kernel with curand_normal4, unroll 4): element
    `i` of a call is written by thread `i mod T` (T = the launch's threads), in its `j = i div T`-th
    slot: Philox draw number `j div 4` of that thread, normal number `j mod 4` of curand_normal4
    (sin and cos of words 0-1, then sin and cos of words 2-3). The thread is the subsequence (counter
    words 2-3), the call's offset plus the draw number is counter words 0-1. T is at least the element
    count whenever the GPU can run one thread per element (SMs x max threads per SM, 270,336 on an
    H100), and then each element is sin() of its own subsequence's first draw. That is all A1111's
    rng_philox.py does, so `threads=None` means exactly that, whatever the size.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        #: Counter word 0 of the next call's first draw (torch's philox offset / 4).
        self.offset = 0

    def randn(self, shape, threads: int | None = None) -> np.ndarray:
        """The next torch.randn(shape) as CUDA draws it, float32. `threads` is the launch's thread
        count T for tensors bigger than the GPU runs at once; None is A1111's layout (T >= size)."""
        n = math.prod(int(d) for d in shape)
        key = _split_seed(self.seed)
        if threads is None or threads >= n:
            counter = np.zeros((4, n), dtype=np.uint32)
            counter[0] = np.uint32(self.offset & 0xFFFFFFFF)
            counter[1] = np.uint32(self.offset >> 32)
            counter[2] = np.arange(n, dtype=np.uint32)  # one subsequence per element
            words = philox4x32_10(counter, key)
            self.offset += 1
            return box_muller(words[0], words[1])[0].reshape(tuple(shape))
        return self._randn_strided(n, int(threads), key).reshape(tuple(shape))

    def _randn_strided(self, n: int, threads: int, key: tuple[int, int]) -> np.ndarray:
        # More elements than threads: thread t loops, each loop one curand_normal4 feeding 4 elements
        # spaced T apart; torch moves the offset by 4 per loop, rounded, i.e. by `loops` draws.
        loops = -(-n // (4 * threads))
        index = np.arange(n, dtype=np.int64)
        thread, slot = index % threads, index // threads
        draw, component = slot // 4, slot % 4
        pairs = np.unique(draw * threads + thread)  # the (draw, thread) Philox blocks in use
        counter = np.zeros((4, pairs.size), dtype=np.uint32)
        word0 = pairs // threads + self.offset
        counter[0] = (word0 & 0xFFFFFFFF).astype(np.uint32)
        counter[1] = (word0 >> 32).astype(np.uint32)
        counter[2] = (pairs % threads).astype(np.uint32)
        words = philox4x32_10(counter, key)
        normals = np.stack([*box_muller(words[0], words[1]), *box_muller(words[2], words[3])])
        where = np.searchsorted(pairs, draw * threads + thread)
        self.offset += loops
        return normals[component, where]
