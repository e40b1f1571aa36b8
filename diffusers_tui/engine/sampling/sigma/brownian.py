"""torchsde's BrownianTree, the same path at a fraction of the cost, for the SDE samplers' noise.

k-diffusion (A1111) and ComfyUI draw SDE noise from `torchsde.BrownianTree(t0, w0, t1, entropy=seed)`:
a dyadic tree over [t0, t1] whose nodes split their parent's increment by a Brownian bridge, each
split's Gaussian drawn from its own seed (numpy SeedSequence of the entropy, the node's position and
depth). torchsde derives every node's increment as a tensor, draws each split's Gaussian twice (once per
child) and keeps only its last 45 nodes, fewer than two queries' paths, so a 20-step SDE run on the
demo spent about 6% of its time re-deriving nodes.

This is the same tree, walked directly: the same splits (halfway, rounded to the tolerance), seeds and
Gaussians. A node's increment is carried as its weights on the root's increment and on the split
Gaussians above it (a bridge split is linear), so a query costs one seed and one draw per new split
and one weighted sum of tensors. The sums are torchsde's up to float rounding (tests/engine/
test_sigma_noise.py compares whole runs with torchsde's own tree).
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


class _Node:
    """An interval of the tree; once split, its midway point, its split's seed and its two halves."""

    __slots__ = ("start", "end", "parent", "spawn_key", "depth", "midway", "seed", "left", "right", "weights")

    def __init__(self, start: float, end: float, parent: "_Node | None", spawn_key: int, depth: int,
                 weights: dict, rounding):
        self.start, self.end, self.parent = rounding(start), rounding(end), parent
        self.spawn_key, self.depth, self.midway = spawn_key, depth, None
        #: The node's increment as {root increment or split node: weight}.
        self.weights = weights


class BrownianTree:
    """Increments W(tb) - W(ta) of one Brownian path over [t0, t1], a function of the entropy alone."""

    def __init__(self, t0: float, t1: float, size: tuple, dtype: torch.dtype, device: torch.device, entropy: int,
                 randn: Randn):
        self.size, self.dtype, self.device, self.entropy, self.randn = tuple(size), dtype, device, int(entropy), randn
        digits = -int(math.log10(TOLERANCE))
        self._round = lambda x: round(x, digits)
        t0, t1 = float(t0), float(t1)
        self.root = _Node(t0, t1, None, 0, 0, {_ROOT_INCREMENT: 1.0}, self._round)
        w_seed = np.random.SeedSequence(entropy=self.entropy, pool_size=POOL_SIZE).generate_state(1)[0]
        self.root_increment = randn(self.size, dtype, device, int(w_seed)) * math.sqrt(t1 - t0)
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
        weights: dict = {}
        for node in self._covering(self._round(ta), self._round(tb)):
            for key, weight in node.weights.items():
                weights[key] = weights.get(key, 0.0) + weight
        total = None
        for key, weight in weights.items():
            # Weights stay Python numbers: each add is queued on an accelerator without waiting for it.
            tensor = self.root_increment if key is _ROOT_INCREMENT else self._draw(key)
            total = tensor * weight if total is None else total.add_(tensor, alpha=weight)
        return total

    def _covering(self, ta: float, tb: float) -> list[_Node]:
        """The tree's largest nodes inside [ta, tb], left to right, splitting halfway down to ta and tb."""
        found, pending = [], [(self.root, ta, tb)]
        while pending:
            node, a, b = pending.pop()
            if a == node.start and b == node.end:
                found.append(node)
                continue
            if node.midway is None:
                self._split(node)
            if b <= node.midway:
                pending.append((node.left, a, b))
            elif a >= node.midway:
                pending.append((node.right, a, b))
            else:  # right pushed first: the left half comes out first
                pending.append((node.right, node.midway, b))
                pending.append((node.left, a, node.midway))
        return found

    def _split(self, node: _Node) -> None:
        # torchsde's _split_exact at the rounded halfway point, and its Brownian bridge for the halves:
        # left = (l/h)·W + √(l·r/h)·Z, right = W - left, with l, r the halves' lengths and Z the split's draw.
        halfway = 0.5 * (node.end + node.start)
        node.midway = self._round(halfway)
        if node.midway in (node.start, node.end):
            raise RuntimeError("Brownian tree: an interval narrower than its tolerance was split")
        sequence = np.random.SeedSequence(entropy=self.entropy, spawn_key=(node.spawn_key, node.depth),
                                          pool_size=POOL_SIZE)
        node.seed = int(sequence.generate_state(1)[0])  # torchsde's W seed: the first of the four it takes
        h_reciprocal = 1 / (node.end - node.start)
        left_diff, right_diff = node.midway - node.start, node.end - node.midway
        ratio = left_diff * h_reciprocal
        spread = math.sqrt(left_diff * right_diff * h_reciprocal)
        left = {key: ratio * weight for key, weight in node.weights.items()}
        right = {key: weight - left[key] for key, weight in node.weights.items()}
        left[node], right[node] = spread, -spread
        depth = node.depth + 1
        node.left = _Node(node.start, halfway, node, 2 * node.spawn_key, depth, left, self._round)
        node.right = _Node(halfway, node.end, node, 2 * node.spawn_key + 1, depth, right, self._round)

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
