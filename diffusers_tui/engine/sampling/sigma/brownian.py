"""torchsde's BrownianTree, the same path at a fraction of the cost, for the SDE samplers' noise.

k-diffusion (A1111) and ComfyUI draw SDE noise from `torchsde.BrownianTree(t0, w0, t1, entropy=seed)`:
a dyadic tree over [t0, t1] whose nodes split their parent's increment by a Brownian bridge, each
split's Gaussian drawn from its own seed (numpy SeedSequence of the entropy, the node's position and
depth). torchsde derives every node's increment as a tensor, draws each split's Gaussian twice (once per
child) and keeps only its last 45 nodes, fewer than two queries' paths, so a 20-step SDE run on the
demo spent about 6% of its time re-deriving nodes.

This is the same tree, walked directly: the same splits (halfway, rounded to the tolerance), seeds and
Gaussians. W at each split point is carried as its weights on the root's increment and on the split
Gaussians (a bridge split is linear), so a query costs one seed (computed without numpy's SeedSequence
object) and one draw per new split, and one weighted sum of tensors: W(tb) - W(ta). The sums are
torchsde's up to float rounding (tests/engine/test_sigma_noise.py compares whole runs with torchsde's
own tree).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import numpy as np
import torch

#: torchsde.BrownianTree's defaults, which both tools use.
TOLERANCE, POOL_SIZE = 1e-6, 24
#: Split Gaussians kept for reuse (a query's path has about 20 new ones): 32 MB on a 1024 px SDXL latent.
KEPT_DRAWS = 128

#: randn(size, dtype, device, seed): how a tool draws each split's Gaussian (torchsde's own _randn,
#: or A1111's randn_local).
Randn = Callable[[tuple, torch.dtype, torch.device, int], torch.Tensor]

#: The key of the root's own increment among a node's weights (the other keys are split nodes).
_ROOT_INCREMENT = "W"


class _SplitSeeds:
    """`SeedSequence(entropy, spawn_key=key, pool_size=24).generate_state(1)[0]` for any key, in ~1 µs not ~9.

    numpy mixes the entropy into the pool first (a function of the entropy alone, taken from numpy once),
    then each spawn-key word into every pool word, and the first output word reads pool word 0 alone. So
    only word 0's part of the spawn-key mixing is needed: numpy's hashmix and mix (bit_generator.pyx) on
    uint32, with the hash constant at the point numpy reaches it. tests/engine/test_sigma_noise.py checks
    this against numpy on random keys and entropies."""

    _MASK, _XSHIFT = 0xFFFFFFFF, 16
    _INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
    _MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
    #: The hash constant after the entropy phase (POOL_SIZE hashmixes, then POOL_SIZE·(POOL_SIZE-1)).
    _AFTER_POOL = (_INIT_A * pow(_MULT_A, POOL_SIZE * POOL_SIZE, 1 << 32)) & _MASK
    #: A spawn word is hashmixed once per pool word: the constant advances POOL_SIZE times a word.
    _PER_WORD = pow(_MULT_A, POOL_SIZE, 1 << 32)
    _OUTPUT_HASH = (_INIT_B * _MULT_B) & _MASK

    def __init__(self, entropy: int):
        self.pool_word = int(np.random.SeedSequence(entropy=entropy, pool_size=POOL_SIZE).pool[0])

    def __call__(self, key: tuple[int, ...]) -> int:
        mask, shift = self._MASK, self._XSHIFT
        word_0, hash_const = self.pool_word, self._AFTER_POOL
        for number in key:
            while True:  # numpy's _int_to_uint32_array: 32-bit words, low first; 0 is one word
                value = ((number & mask) ^ hash_const) * (hash_const * self._MULT_A & mask) & mask
                value ^= value >> shift
                mixed = (self._MIX_MULT_L * word_0 - self._MIX_MULT_R * value) & mask
                word_0 = mixed ^ (mixed >> shift)
                hash_const = hash_const * self._PER_WORD & mask
                number >>= 32
                if not number:
                    break
        output = (word_0 ^ self._INIT_B) * self._OUTPUT_HASH & mask
        return output ^ (output >> shift)


class _Node:
    """An interval of the tree; once split, its midway point, its split's seed and its two halves."""

    __slots__ = ("start", "end", "spawn_key", "depth", "midway", "seed", "left", "right")

    def __init__(self, start: float, end: float, spawn_key: int, depth: int):
        self.start, self.end, self.spawn_key, self.depth, self.midway = start, end, spawn_key, depth, None


class BrownianTree:
    """Increments W(tb) - W(ta) of one Brownian path over [t0, t1], a function of the entropy alone."""

    def __init__(self, t0: float, t1: float, size: tuple, dtype: torch.dtype, device: torch.device, entropy: int,
                 randn: Randn):
        self.size, self.dtype, self.device, self.entropy, self.randn = tuple(size), dtype, device, int(entropy), randn
        digits = -int(math.log10(TOLERANCE))
        self._round = lambda x: round(x, digits)
        t0, t1 = self._round(float(t0)), self._round(float(t1))
        self.root = _Node(t0, t1, 0, 0)
        self._seeds = _SplitSeeds(self.entropy)
        self.root_increment = randn(self.size, dtype, device, self._seeds(())) * math.sqrt(t1 - t0)
        #: W at each split point, as {root increment or split node: weight}; W(t0) = 0.
        self._points: dict[float, dict] = {t0: {}, t1: {_ROOT_INCREMENT: 1.0}}
        self._draws: OrderedDict[_Node, torch.Tensor] = OrderedDict()

    def __call__(self, ta: float, tb: float) -> torch.Tensor:
        """W over [ta, tb] (ta ≤ tb; outside [t0, t1] clamped to it, as torchsde clamps)."""
        root = self.root
        ta = min(max(float(ta), root.start), root.end)
        tb = min(max(float(tb), root.start), root.end)
        if ta > tb:
            raise ValueError(f"query times ta={ta} and tb={tb} must have ta <= tb")
        if ta == tb:
            return torch.zeros(self.size, dtype=self.dtype, device=self.device)
        # The sum of torchsde's nodes covering [ta, tb] is W(tb) - W(ta); taking the difference of the two
        # points' weights (Python floats) rather than of tensors keeps the float32 sum as short and as exact.
        weights = dict(self._point(self._round(tb)))
        for key, weight in self._point(self._round(ta)).items():
            weights[key] = weights.get(key, 0.0) - weight
        total = None
        for key, weight in weights.items():
            if weight == 0.0:
                continue
            # Weights stay Python numbers: each add is queued on an accelerator without waiting for it.
            tensor = self.root_increment if key is _ROOT_INCREMENT else self._draw(key)
            total = tensor * weight if total is None else total.add_(tensor, alpha=weight)
        return total if total is not None else torch.zeros(self.size, dtype=self.dtype, device=self.device)

    def _point(self, t: float) -> dict:
        """W(t)'s weights, splitting halfway down to t as torchsde does to reach a query's ends."""
        node = self.root
        while t not in self._points:
            if node.midway is None:
                self._split(node)
            node = node.left if t < node.midway else node.right
        return self._points[t]

    def _split(self, node: _Node) -> None:
        # torchsde's _split_exact at the rounded halfway point, and its Brownian bridge for the halves:
        # W(mid) = W(start) + (l/h)·(W(end) - W(start)) + √(l·r/h)·Z, with l, r the halves' lengths,
        # h = l + r and Z the split's draw.
        midway = node.midway = self._round(0.5 * (node.end + node.start))
        if midway in (node.start, node.end):
            raise RuntimeError("Brownian tree: an interval narrower than its tolerance was split")
        # torchsde's W seed: the first of the four SeedSequence(entropy, spawn_key=(key, depth)) states.
        node.seed = self._seeds((node.spawn_key, node.depth))
        h_reciprocal = 1 / (node.end - node.start)
        left_length, right_length = midway - node.start, node.end - midway
        ratio = left_length * h_reciprocal
        weights = {key: (1 - ratio) * weight for key, weight in self._points[node.start].items()}
        for key, weight in self._points[node.end].items():
            weights[key] = weights.get(key, 0.0) + ratio * weight
        weights[node] = math.sqrt(left_length * right_length * h_reciprocal)
        self._points[midway] = weights
        depth = node.depth + 1
        node.left = _Node(node.start, midway, 2 * node.spawn_key, depth)
        node.right = _Node(midway, node.end, 2 * node.spawn_key + 1, depth)

    def _draw(self, node: _Node) -> torch.Tensor:
        """The split's Gaussian, drawn again from its seed if it is no longer kept."""
        draw = self._draws.get(node)
        if draw is None:
            draw = self._draws[node] = self.randn(self.size, self.dtype, self.device, node.seed)
            if len(self._draws) > KEPT_DRAWS:
                self._draws.popitem(last=False)
        else:
            self._draws.move_to_end(node)
        return draw
