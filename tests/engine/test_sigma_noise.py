"""The engine's noise conventions: A1111's per-image generators (CPU, NV Philox), ComfyUI's batch noise, Brownian trees."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest
import torch

from diffusers_tui.engine.sampling.sigma.noise import CONVENTIONS, NoiseSource, initial_noise, step_noise
from diffusers_tui.engine.sampling.sigma import noise as noise_module
from diffusers_tui.engine.sampling.sigma.philox import PhiloxGenerator

SHAPE = (3, 4, 8, 8)  # 256 numbers an image: a multiple of 16, as real latents are
SEEDS = [12345, 7, 4_000_000_000]


def cpu_draws(seed, shape, count):
    generator = torch.Generator("cpu").manual_seed(seed)
    return [torch.randn(shape, generator=generator) for _ in range(count)]


# ---- A1111 -----------------------------------------------------------------------------------------

def test_a1111_cpu_starts_each_image_from_its_own_cpu_generator():
    got = initial_noise("A1111 CPU", SEEDS, SHAPE)
    want = torch.stack([cpu_draws(seed, SHAPE[1:], 1)[0] for seed in SEEDS])
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_a1111_ancestral_noise_continues_the_generators_that_drew_the_start():
    source = NoiseSource("A1111 CPU", SEEDS)
    source.initial(SHAPE)
    noise = source.for_sampler(torch.zeros(SHAPE), 0.03, 14.6)
    first, second = noise(14.6, 10.0), noise(10.0, 5.0)
    draws = [cpu_draws(seed, SHAPE[1:], 3) for seed in SEEDS]
    assert torch.equal(first, torch.stack([d[1] for d in draws]))
    assert torch.equal(second, torch.stack([d[2] for d in draws]))
    # A sampler-only source (step_noise) continues where the whole run would have.
    alone = step_noise("A1111 CPU", SEEDS, torch.zeros(SHAPE), 0.03, 14.6, brownian=False)
    assert torch.equal(alone(14.6, 10.0), first)


def test_a1111_ensd_reseeds_every_image_after_the_starting_noise():
    source = NoiseSource("A1111 CPU", SEEDS, ensd=31337)
    start = source.initial(SHAPE)
    noise = source.for_sampler(torch.zeros(SHAPE), 0.03, 14.6)
    assert torch.equal(start, initial_noise("A1111 CPU", SEEDS, SHAPE))  # the start does not move
    draws = [cpu_draws(seed + 31337, SHAPE[1:], 2) for seed in SEEDS]
    assert torch.equal(noise(14.6, 10.0), torch.stack([d[0] for d in draws]))
    assert torch.equal(noise(10.0, 5.0), torch.stack([d[1] for d in draws]))
    alone = step_noise("A1111 CPU", SEEDS, torch.zeros(SHAPE), 0.03, 14.6, brownian=False, ensd=31337)
    assert torch.equal(alone(1.0, 0.5), torch.stack([d[0] for d in draws]))


def test_a1111_nv_draws_from_one_philox_generator_per_image_and_continues_it():
    source = NoiseSource("A1111 NV", SEEDS)
    assert source.generator == "philox"
    start = source.initial(SHAPE, dtype=torch.float16)
    noise = source.for_sampler(torch.zeros(SHAPE), 0.03, 14.6)
    generators = [PhiloxGenerator(seed) for seed in SEEDS]
    assert torch.equal(start, torch.stack([torch.from_numpy(g.randn(SHAPE[1:])) for g in generators]).half())
    assert torch.equal(noise(1.0, 0.5), torch.stack([torch.from_numpy(g.randn(SHAPE[1:])) for g in generators]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the GPU setting draws on CUDA itself")
def test_a1111_gpu_without_cuda_is_the_philox_emulation():
    source = NoiseSource("A1111 GPU", SEEDS)
    assert source.generator == "philox"
    assert torch.equal(source.initial(SHAPE), initial_noise("A1111 NV", SEEDS, SHAPE))


def test_a1111_cpu_and_nv_differ_and_unknown_names_are_refused():
    assert not torch.equal(initial_noise("A1111 CPU", SEEDS, SHAPE), initial_noise("A1111 NV", SEEDS, SHAPE))
    assert set(CONVENTIONS) == {"A1111 CPU", "A1111 GPU", "A1111 NV", "ComfyUI"}
    with pytest.raises(ValueError):
        NoiseSource("A1111", SEEDS)
    with pytest.raises(ValueError):
        initial_noise("A1111 CPU", SEEDS, (2, 4, 8, 8))  # batch must be len(seeds)


# ---- ComfyUI ---------------------------------------------------------------------------------------

def comfy_reference(seed, shape):
    # comfy/sample.py prepare_noise, literally (the global generator is restored afterwards).
    with torch.random.fork_rng(devices=[]):
        generator = torch.manual_seed(seed)
        return torch.randn(shape, dtype=torch.float32, generator=generator, device="cpu")


def test_comfyui_draws_the_whole_batch_from_one_seed():
    got = initial_noise("ComfyUI", [99] * 3, SHAPE)
    assert torch.equal(got, comfy_reference(99, SHAPE))
    with pytest.raises(ValueError):
        NoiseSource("ComfyUI", [99, 100, 101])  # one seed a batch
    with pytest.raises(ValueError):
        NoiseSource("ComfyUI", [99], ensd=31337)


def test_comfyui_batch_index_picks_images_of_the_bigger_batch():
    whole = comfy_reference(99, (4, *SHAPE[1:]))
    picked = initial_noise("ComfyUI", [99] * 3, SHAPE, batch_index=[3, 1, 3])
    assert torch.equal(picked, whole[[3, 1, 3]])


def test_comfyui_ancestral_noise_is_a_second_generator_on_x_seeded_with_the_seed():
    source = NoiseSource("ComfyUI", [99] * 3)
    start = source.initial(SHAPE)
    noise = source.for_sampler(torch.zeros(SHAPE), 0.03, 14.6)
    generator = torch.Generator("cpu").manual_seed(99)
    first = noise(14.6, 10.0)
    assert torch.equal(first, torch.randn(SHAPE, generator=generator))
    assert torch.equal(noise(10.0, 5.0), torch.randn(SHAPE, generator=generator))
    # On the CPU both generators are the same stream, so ComfyUI's first step noise is its start noise.
    assert torch.equal(first, start)


# ---- Philox (A1111 NV, and A1111 GPU without CUDA) -------------------------------------------------

M32 = 0xFFFFFFFF


def philox_reference(counter, key):
    """Philox4x32-10 from its definition, one block, plain integers."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, p0 & M32
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


# curand: CURAND_2POW32_INV is 2**-32, CURAND_2POW32_INV_2PI is 2**-32 times float32 2π.
INV32, INV32_2PI = 2.0**-32, 2.0**-32 * float(np.float32(2 * math.pi))


def box_muller_reference(x, y):
    u, v = x * INV32 + INV32 / 2, y * INV32_2PI + INV32_2PI / 2
    s = math.sqrt(-2 * math.log(u))
    return s * math.sin(v), s * math.cos(v)


def normal_reference(seed, call, n, threads=None):
    """Element i of the `call`-th torch.randn(n) on CUDA: thread i % T, slot i // T of its curand_normal4 draws."""
    threads = threads or n
    loops = -(-n // (4 * threads))
    out = []
    for i in range(n):
        thread, slot = i % threads, i // threads
        words = philox_reference((call * loops + slot // 4, 0, thread, 0), (seed & M32, seed >> 32))
        pair = box_muller_reference(*words[:2]) if slot % 4 < 2 else box_muller_reference(*words[2:])
        out.append(pair[slot % 2])
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**40 + 7])
def test_philox_matches_the_definition_element_for_element(seed):
    generator = PhiloxGenerator(seed)
    for call in range(3):
        got = generator.randn((5, 7))
        np.testing.assert_allclose(got.ravel(), normal_reference(seed, call, 35), rtol=1e-6, atol=1e-6)


def test_philox_gives_rng_philox_documented_output():
    # modules/rng_philox.py's docstring: Generator(seed=0).randn((3, 4)), CUDA torch.randn's numbers.
    documented = [[-0.92466259, -0.42534415, -2.6438457, 0.14518388],
                  [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
                  [-1.07454231, -0.36314407, -1.67105067, 2.26550497]]
    np.testing.assert_allclose(PhiloxGenerator(0).randn((3, 4)), documented, atol=1e-6)


def test_philox_grid_stride_layout_for_more_elements_than_threads():
    generator = PhiloxGenerator(5)
    for call in range(2):
        got = generator.randn((50,), threads=8)  # 2 loops of curand_normal4 a thread
        np.testing.assert_allclose(got, normal_reference(5, call, 50, threads=8), rtol=1e-6, atol=1e-6)
    assert generator.offset == 4
    # As many threads as elements (or more) is the plain layout.
    assert np.array_equal(PhiloxGenerator(5).randn((50,), threads=64), PhiloxGenerator(5).randn((50,)))


def test_philox_is_standard_normal_deterministic_and_seed_dependent():
    sample = PhiloxGenerator(2024).randn((200_000,)).astype(np.float64)
    assert abs(sample.mean()) < 0.01 and abs(sample.std() - 1) < 0.01
    assert abs(np.corrcoef(sample[:-1], sample[1:])[0, 1]) < 0.01
    assert abs(np.mean(np.abs(sample) < 1.959964) - 0.95) < 0.003
    again = PhiloxGenerator(2024)
    assert np.array_equal(again.randn((200_000,)), sample.astype(np.float32))
    assert not np.array_equal(PhiloxGenerator(2025).randn((1000,)), sample[:1000].astype(np.float32))
    assert not np.array_equal(again.randn((1000,)), sample[:1000].astype(np.float32))  # the offset moved


# ---- Brownian trees --------------------------------------------------------------------------------

TREE_SHAPE = (2, 4, 6, 6)


def tree_noise(convention="A1111 CPU", seeds=(11, 22), shape=TREE_SHAPE, **kwargs):
    seeds = list(seeds) if convention != "ComfyUI" else [seeds[0]] * shape[0]
    return NoiseSource(convention, seeds).for_sampler(torch.zeros(shape), 0.03, 14.6, brownian=True, **kwargs)


def test_a_brownian_increment_does_not_depend_on_what_was_asked_before():
    fresh, used = tree_noise(), tree_noise()
    assert used.trees is None  # built at the first call
    for a, b in [(14.6, 0.03), (2.0, 1.0), (0.5, 0.1), (7.3, 3.3)]:
        used(a, b)
    assert torch.equal(fresh(3.0, 1.5), used(3.0, 1.5))
    assert torch.equal(used(3.0, 1.5), used(3.0, 1.5))


def test_brownian_increments_add_up_along_the_path_and_flip_with_direction():
    noise = tree_noise()
    a, b, c = 9.0, 4.0, 0.7
    coarse = noise(a, c) * math.sqrt(a - c)
    fine = noise(a, b) * math.sqrt(a - b) + noise(b, c) * math.sqrt(b - c)
    torch.testing.assert_close(fine, coarse, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(noise(c, a), -noise(a, c))
    assert torch.equal(noise(2.0, 2.0), torch.zeros(TREE_SHAPE))


def test_normalised_brownian_increments_are_unit_gaussian():
    sample = tree_noise(shape=(2, 4, 64, 64))(5.0, 4.0).double()
    assert abs(sample.mean()) < 0.03 and abs(sample.std() - 1) < 0.03


def test_a1111_trees_are_one_per_image_so_an_image_does_not_depend_on_its_batch():
    both = tree_noise(seeds=(11, 22))(6.0, 2.0)
    alone = tree_noise(seeds=(22,), shape=(1, *TREE_SHAPE[1:]))(6.0, 2.0)
    assert torch.equal(both[1:], alone)


def torchsde_reference(seed, w0, sigma, sigma_next, sigma_min=0.03, sigma_max=14.6):
    import torchsde

    f32 = lambda value: torch.tensor(value, dtype=torch.float32)  # noqa: E731 - σ as the tools hold it
    tree = torchsde.BrownianTree(f32(sigma_min), w0, f32(sigma_max), entropy=seed)
    return -tree(f32(sigma_next), f32(sigma)) / (f32(sigma) - f32(sigma_next)).sqrt()


def test_a1111_cpu_tree_is_k_diffusions_tree_per_image_seed():
    # On the CPU in float32, A1111's randn_local draws what torchsde's own _randn draws.
    got = tree_noise(seeds=(11, 22))(6.0, 2.0)
    for image, seed in enumerate((11, 22)):
        want = torchsde_reference(seed, torch.zeros(TREE_SHAPE[1:]), 6.0, 2.0)
        torch.testing.assert_close(got[image], want, rtol=0, atol=1e-6)


def test_comfyui_tree_is_one_tree_over_the_whole_batch_with_the_seed():
    got = tree_noise("ComfyUI", seeds=(11,), tree_on_cpu=True)(6.0, 2.0)
    torch.testing.assert_close(got, torchsde_reference(11, torch.zeros(TREE_SHAPE), 6.0, 2.0), rtol=0, atol=1e-6)
    # Image 1 continues seed 11's stream rather than starting it again, as a per-image tree would.
    per_image = tree_noise(seeds=(11, 11))(6.0, 2.0)
    assert torch.equal(got[0], per_image[0]) and not torch.equal(got[1], per_image[1])


@pytest.mark.parametrize("kept", [6, 128])
def test_a_whole_runs_tree_queries_are_torchsdes_numbers(kept, monkeypatch):
    """brownian.py walks torchsde's tree itself: every increment of an SDE run (each step and its midpoint,
    as DPM++ SDE asks) is torchsde's up to float rounding, whether the split draws are kept or drawn again."""
    import torchsde

    from diffusers_tui.engine.sampling.sigma import brownian

    monkeypatch.setattr(brownian, "KEPT_DRAWS", kept)
    f32 = lambda value: float(torch.tensor(value, dtype=torch.float32))  # noqa: E731
    sigmas = [14.6 * (0.03 / 14.6) ** (i / 19) for i in range(20)]
    queries = [(0.03, 14.6)]
    for high, low in zip(sigmas, sigmas[1:]):
        middle = (high * low) ** 0.5
        queries += [(middle, high), (low, middle), (low, high)]
    for seed in (0, 11, 2**31 - 1):
        ours = brownian.BrownianTree(f32(0.03), f32(14.6), (3, 4, 4), torch.float32, torch.device("cpu"), seed,
                                     noise_module._torchsde_randn)
        theirs = torchsde.BrownianTree(torch.tensor(f32(0.03)), torch.zeros(3, 4, 4), torch.tensor(f32(14.6)),
                                       entropy=seed)
        for a, b in queries:
            want = theirs(torch.tensor(f32(a)), torch.tensor(f32(b)))
            # float32 sums in another order: within a few ulps of the increment's own size.
            torch.testing.assert_close(ours(f32(a), f32(b)), want, rtol=0, atol=2e-6 * math.sqrt(b - a),
                                       msg=lambda m: f"seed {seed}, [{a}, {b}]: {m}")


def test_nv_trees_draw_through_philox():
    nv = tree_noise("A1111 NV")(6.0, 2.0)
    assert not torch.equal(nv, tree_noise("A1111 CPU")(6.0, 2.0))
    assert abs(float(nv.double().std()) - 1) < 0.2


def test_the_tree_range_can_come_from_the_schedule():
    sigmas = [14.6, 7.0, 2.0, 0.5, 0.03, 0.0]
    source = NoiseSource("A1111 CPU", [11, 22])
    noise = source.for_sampler(torch.zeros(TREE_SHAPE), brownian=True, sigmas=sigmas)
    torch.testing.assert_close(noise(6.0, 2.0), tree_noise()(6.0, 2.0), rtol=0, atol=0)
    with pytest.raises(ValueError):
        source.for_sampler(torch.zeros(TREE_SHAPE), brownian=True)


def test_querying_at_or_past_the_ends_is_torchsdes_clamp_and_says_nothing():
    noise = tree_noise()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isfinite(noise(14.6, 0.03)).all()  # float32 ends just past torchsde's rounded ones
        torch.testing.assert_close(noise(20.0, 10.0) * math.sqrt(10), noise(14.6, 10.0) * math.sqrt(4.6))


def test_split_seeds_are_numpys_seed_sequence_states():
    """The tree's split seeds skip numpy's SeedSequence object but must be its first state word, for any
    entropy (one word or two) and any spawn key (0, small, past 32 bits)."""
    from diffusers_tui.engine.sampling.sigma.brownian import POOL_SIZE, _SplitSeeds

    rng = random.Random(5)
    for entropy in (0, 1, 42, 2**31 - 1, 2**32 + 5, 2**63 + 17):
        seeds = _SplitSeeds(entropy)
        keys = [(), (0, 0), (1, 1), (2**32, 3)] + [(rng.randrange(2**26), rng.randrange(40)) for _ in range(40)]
        for key in keys:
            want = np.random.SeedSequence(entropy=entropy, spawn_key=key, pool_size=POOL_SIZE).generate_state(1)[0]
            assert seeds(key) == int(want), (entropy, key)
