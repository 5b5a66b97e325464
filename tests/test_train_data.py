"""The trainer's data side: temporal sampling, rotation, the store-backed dataset and its loader."""

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from s2v.train.augment import random_rotation, rotate, rotation_matrices  # noqa: E402
from s2v.train.data import (  # noqa: E402
    BlockCache,
    BlockShuffleSampler,
    SkeletonDataset,
    make_loader,
)
from s2v.train.sampling import (  # noqa: E402
    Positions,
    TemporalSampler,
    center_crop_resize,
    crop_resize,
    resize_positions,
    uniform_indices,
    uniform_test_indices,
)

S2V = TemporalSampler()  # uniform, 90 frames, train
MAMP = TemporalSampler("crop_resize", 120)

# --------------------------------------------------------------------------------------------
# temporal sampling
# --------------------------------------------------------------------------------------------


def test_uniform_takes_one_frame_from_each_of_t_equal_segments():
    rng = np.random.default_rng(0)
    n, t = 300, 90
    bounds = np.arange(t + 1) * n // t
    seen = np.zeros(n, bool)
    for _ in range(200):
        idx = uniform_indices(n, t, rng)
        assert idx.shape == (t,) and idx.dtype == np.int64
        assert np.all((bounds[:-1] <= idx) & (idx < bounds[1:]))
        seen[idx] = True
    assert seen.all()  # every frame, the first and last included, can be drawn


def test_uniform_loops_a_clip_shorter_than_t():
    rng = np.random.default_rng(1)
    idx = uniform_indices(30, 90, rng)
    assert np.array_equal(idx, (idx[0] + np.arange(90)) % 30)
    assert np.array_equal(np.bincount(idx, minlength=30), np.full(30, 3))


def test_uniform_test_takes_segment_middles_and_spreads_k_clips():
    assert np.array_equal(uniform_test_indices(180, 90), (2 * np.arange(90) + 1)[None])
    ten = uniform_test_indices(900, 90, clips=10)  # segments of 10 frames: offsets 0..9
    assert ten.shape == (10, 90)
    assert np.array_equal(ten, 10 * np.arange(90)[None] + np.arange(10)[:, None])
    short = uniform_test_indices(30, 90, clips=3)  # loops starting at 0, 10, 20
    assert np.array_equal(short[:, 0], [0, 10, 20])
    assert np.array_equal(short[0], np.arange(90) % 30)


@pytest.mark.parametrize("n", [40, 80, 150, 300])
def test_crop_resize_gives_120_frames_from_a_crop_of_at_least_64(n):
    rng = np.random.default_rng(n)
    for _ in range(50):
        lo, hi, w = crop_resize(n, 120, rng)
        assert lo.shape == hi.shape == w.shape == (120,)
        span = hi.max() - lo.min() + 1
        assert 0 <= lo.min() and hi.max() < n
        assert span >= min(64, n) and span >= min(n, max(64, n // 2))
        assert np.all((0 <= w) & (w < 1))
    lo, hi, _ = crop_resize(40, 120, rng)
    assert lo.min() == 0 and hi.max() == 39  # shorter than 64: the whole clip


def test_center_crop_drops_2_5_percent_at_each_end():
    lo, hi, _ = center_crop_resize(100, 120)
    assert lo.min() == 2 and hi.max() == 97


@pytest.mark.parametrize("length", [50, 120, 300])
def test_resize_matches_torch_linear_interpolation(length):
    x = np.random.default_rng(0).normal(size=(length, 7)).astype(np.float32)
    lo, hi, w = resize_positions(0, length, 120)
    ours = x[lo] * (1 - w[:, None]) + x[hi] * w[:, None]
    ref = F.interpolate(torch.from_numpy(x.T[None]), size=120, mode="linear", align_corners=False)
    np.testing.assert_allclose(ours, ref[0].numpy().T, rtol=0, atol=1e-5)


def test_sampler_config_validates_and_returns_k_by_t_positions():
    assert S2V.positions(100, np.random.default_rng(0)).lo.shape == (1, 90)
    assert TemporalSampler(train=False, clips=10).positions(100).lo.shape == (10, 90)
    pos = MAMP.positions(100, np.random.default_rng(0))
    assert pos.hi.shape == pos.w.shape == (1, 120)
    assert np.array_equal(pos.nearest(), np.where(pos.w < 0.5, pos.lo, pos.hi))
    with pytest.raises(ValueError):
        TemporalSampler("random")
    with pytest.raises(ValueError):
        TemporalSampler(clips=10)  # multi-clip is test-time only
    with pytest.raises(ValueError):
        S2V.positions(100)  # training needs a generator


# --------------------------------------------------------------------------------------------
# rotation
# --------------------------------------------------------------------------------------------


def test_rotation_matrices_are_proper_and_compose_z_y_x():
    angles = torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.0, 0.25]])
    r = rotation_matrices(angles)
    eye = torch.eye(3).expand(2, 3, 3)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(2), atol=1e-6, rtol=0)
    c, s = np.cos(0.25), np.sin(0.25)  # pure z rotation: x axis -> (cos, sin, 0)
    want = torch.tensor([c, s, 0.0], dtype=torch.float32)
    torch.testing.assert_close(r[1, :, 0], want, atol=1e-6, rtol=0)
    rx, ry, rz = rotation_matrices(torch.diag(angles[0]))  # one axis at a time
    torch.testing.assert_close(r[0], rz @ ry @ rx, atol=1e-6, rtol=0)


def test_random_rotation_keeps_norms_bones_and_zeros_and_differs_per_clip():
    x = torch.randn(1, 2, 90, 25, 3).repeat(4, 1, 1, 1, 1)  # four copies of one clip
    x[:, 1, :, :, :] = 0.0  # absent second actor
    x[:, 0, 10] = 0.0  # one dropped frame
    g = torch.Generator().manual_seed(0)
    y = random_rotation(x, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.all(y[x == 0] == 0)  # absent joints stay exactly zero
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)
    bone = (x[..., 1, :] - x[..., 0, :]).norm(dim=-1)
    torch.testing.assert_close((y[..., 1, :] - y[..., 0, :]).norm(dim=-1), bone, atol=1e-5, rtol=0)
    for b in range(1, 4):
        assert not torch.allclose(y[0], y[b])  # one rotation per clip
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(random_rotation(x, generator=g2), y)  # reproducible from the generator


def test_random_rotation_angles_stay_within_max_angle():
    x = torch.tensor([1.0, 0.0, 0.0]).expand(5000, 1, 1, 1, 3).contiguous()
    y = random_rotation(x, generator=torch.Generator().manual_seed(1), max_angle=0.3)
    # Rz Ry Rx e_x = (cos b cos c, cos b sin c, -sin b): |b|, |c| <= 0.3
    b = torch.asin(-y[:, 0, 0, 0, 2])
    c = torch.atan2(y[:, 0, 0, 0, 1], y[:, 0, 0, 0, 0])
    assert b.abs().max() <= 0.3 + 1e-5 and c.abs().max() <= 0.3 + 1e-5
    assert b.abs().max() > 0.29 and c.abs().max() > 0.29


# --------------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------------


@pytest.fixture
def zarr_store(make_store):
    # small chunks (64 frames) so that samples span chunks and the cache is exercised
    return make_store(n=24, fmt="zarr", chunk_frames=64, shard_chunks=4)


@pytest.fixture
def h5_store(make_store):
    return make_store(n=24, fmt="h5", chunk_frames=64, shard_chunks=4)


def test_items_have_the_documented_shapes_and_dtypes(zarr_store):
    for sampler, t in [(S2V, 90), (MAMP, 120)]:
        ds = SkeletonDataset(zarr_store.path, "xsub", sampler=sampler)
        assert len(ds) == len(zarr_store.split("xsub", "train"))
        x, m, y = ds[0]
        assert x.shape == (2, t, 25, 3) and x.dtype == torch.float32
        assert m.shape == (2, t, 25) and m.dtype == torch.float32
        assert y.shape == () and y.dtype == torch.int64
    ds = SkeletonDataset(zarr_store, "xsub", "test", TemporalSampler(train=False, clips=10))
    x, m, y = ds[1]
    assert x.shape == (10, 2, 90, 25, 3) and m.shape == (10, 2, 90, 25)
    assert int(y) == zarr_store.labels[zarr_store.split("xsub", "test")[1]]


@pytest.mark.parametrize("sampler", [S2V, MAMP, TemporalSampler(train=False)])
def test_clip_and_motion_are_taken_at_the_same_frames(zarr_store, sampler):
    ds = SkeletonDataset(zarr_store.path, "xview", sampler=sampler, seed=7)
    rng = np.random.default_rng(7)  # the dataset's main-process generator
    for i in range(len(ds)):
        x, m, _ = ds[i]
        s = int(ds.indices[i])
        clip, motion = zarr_store.clip(s), zarr_store.motion(s)
        pos = sampler.positions(len(clip), rng if sampler.train else None)
        lo, near = pos.lo[0], pos.nearest()[0]
        if pos.w is None:
            want = clip[lo]
        else:
            w = pos.w[0][:, None, None, None]
            want = clip[lo] * (1 - w) + clip[pos.hi[0]] * w
        np.testing.assert_allclose(x.numpy(), want.transpose(1, 0, 2, 3), atol=1e-6, rtol=0)
        assert np.array_equal(m.numpy(), motion[near].transpose(1, 0, 2))


def test_zarr_h5_and_in_memory_datasets_return_identical_items(zarr_store, h5_store):
    made = [
        SkeletonDataset(zarr_store, "xsub", sampler=MAMP, seed=3),
        SkeletonDataset(h5_store, "xsub", sampler=MAMP, seed=3),
        SkeletonDataset(zarr_store, "xsub", sampler=MAMP, seed=3, in_memory=True),
        SkeletonDataset(h5_store, "xsub", sampler=MAMP, seed=3, in_memory=True),
    ]
    order = np.random.default_rng(0).permutation(len(made[0]))
    for i in order:
        ref = made[0][i]
        for ds in made[1:]:
            for a, b in zip(ref, ds[i], strict=True):
                assert torch.equal(a, b)


def test_in_worker_rotation_is_a_rotation_of_the_sampled_clip(zarr_store):
    plain = SkeletonDataset(zarr_store, "xsub", seed=5)
    rot = SkeletonDataset(zarr_store, "xsub", seed=5, rotate=True)
    x, _, _ = plain[0]
    y, _, _ = rot[0]
    assert not torch.allclose(x, y)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)
    assert torch.all(y[x == 0] == 0)


def test_dataset_holds_numpy_arrays_not_per_sample_python_objects(zarr_store):
    ds = SkeletonDataset(zarr_store, "xsub")
    for name in ("indices", "starts", "lengths", "labels"):
        arr = getattr(ds, name)
        assert isinstance(arr, np.ndarray) and arr.shape == (len(ds),)
    for name, value in vars(ds).items():
        assert not isinstance(value, list | tuple | dict), name
    zarr_store.samples  # noqa: B018  (a DataFrame cached on the caller's Store ...)
    ds = SkeletonDataset(zarr_store, "xsub")
    assert ds.store._samples is None  # ... is not carried into the dataset
    ds[0]  # opens the backend and fills the block cache ...
    restored = pickle.loads(pickle.dumps(ds))  # ... neither of which is pickled
    assert restored._cache is None and restored.store._be is None
    assert len(pickle.dumps(ds)) < 8192


def test_a_copy_with_another_seed_draws_from_that_seed(zarr_store):
    ds = SkeletonDataset(zarr_store, "xsub", sampler=MAMP, seed=1, in_memory=True)
    i = int(np.argmax(ds.lengths))  # long enough for crops to vary
    first = ds[i][0]
    twin = copy.copy(ds)
    twin.seed = 1
    assert torch.equal(twin[i][0], first)  # restarts from its seed, not the original's stream
    twin.seed = 2
    other = copy.copy(twin)
    assert not torch.equal(other[i][0], first)
    assert other.joints is ds.joints  # arrays shared


def test_in_memory_dataset_holds_one_contiguous_array_each(h5_store):
    ds = SkeletonDataset(h5_store, "xsub", in_memory=True)
    frames = int(h5_store.offsets[-1])
    assert ds.joints.shape == (frames, 2, 25, 3) and ds.joints.flags.c_contiguous
    assert ds.motion.shape == (frames, 2, 25) and ds.motion.flags.c_contiguous


def test_explicit_indices_replace_the_split(zarr_store):
    ds = SkeletonDataset(zarr_store, None, indices=np.array([5, 2]))
    assert np.array_equal(ds.labels, zarr_store.labels[[5, 2]])
    with pytest.raises(ValueError):
        SkeletonDataset(zarr_store, None)
    with pytest.raises(IndexError):
        SkeletonDataset(zarr_store, None, indices=np.array([len(zarr_store)]))


def test_block_cache_serves_ranges_across_blocks_and_evicts(zarr_store):
    cache = BlockCache(zarr_store, block_frames=64, capacity=2)
    total = int(zarr_store.offsets[-1])
    for a, n in [(0, 10), (60, 10), (100, 200), (total - 5, 5)]:
        j, m = cache.read(a, n)
        assert np.array_equal(j, np.asarray(zarr_store.joints[a : a + n]))
        assert np.array_equal(m, np.asarray(zarr_store.motion_array[a : a + n]))
    assert len(cache.blocks) == 2
    before = cache.decoded
    cache.read(total - 3, 3)  # the most recent block is still cached
    assert cache.decoded == before


# --------------------------------------------------------------------------------------------
# loader: workers, seeding, order
# --------------------------------------------------------------------------------------------


def batches(loader, epochs=1):
    out = []
    for epoch in range(epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        out.append([tuple(t.clone() for t in b) for b in loader])
    return out


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_workers_0_1_2_read_the_same_test_items(make_store, fmt):
    st = make_store(n=24, fmt=fmt, chunk_frames=64, shard_chunks=4)
    # one dataset: after the 0-worker pass the parent holds an open backend when it forks
    ds = SkeletonDataset(st, "xsub", "test", TemporalSampler(train=False))
    got = []
    for workers in (0, 1, 2):
        got.append(batches(make_loader(ds, 4, False, workers, seed=0, drop_last=False))[0])
        assert workers or ds._cache is not None
    for other in got[1:]:
        assert len(other) == len(got[0])
        for a, b in zip(got[0], other, strict=True):
            assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_worker_seeding_is_reproducible_and_varies_by_epoch(make_store, fmt):
    st = make_store(n=24, fmt=fmt, chunk_frames=64, shard_chunks=4)

    def run(seed, shuffle=True):
        ds = SkeletonDataset(st, "xsub", sampler=MAMP)
        return batches(make_loader(ds, 3, shuffle, 2, seed=seed, drop_last=True), epochs=2)

    first, again, other = run(11), run(11), run(12)
    for e in range(2):
        for a, b in zip(first[e], again[e], strict=True):
            assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(first[0][0][0], other[0][0][0])
    # in a fixed order, the next epoch crops the same samples differently
    e0, e1 = run(11, shuffle=False)
    assert all(torch.equal(a[2], b[2]) for a, b in zip(e0, e1, strict=True))
    assert not any(torch.equal(a[0], b[0]) for a, b in zip(e0, e1, strict=True))


def test_workers_draw_different_crops(zarr_store):
    # the same (longest) sample in both workers' first batch: crops must differ
    longest = int(np.argmax(np.diff(zarr_store.offsets)))
    ds = SkeletonDataset(zarr_store, None, sampler=MAMP, indices=np.full(8, longest))
    (epoch,) = batches(make_loader(ds, 4, False, 2, seed=0, drop_last=False))
    assert not torch.equal(epoch[0][0][0], epoch[1][0][0])


def test_block_shuffle_visits_runs_of_consecutive_chunks():
    chunks = np.repeat(np.arange(20), 5)  # 100 items, 5 per chunk

    def contiguous_runs(order):
        # for some phase, the items of each run of 4 consecutive chunks form one stretch
        for shift in range(4):
            run = (chunks[order] + shift) // 4
            if np.count_nonzero(np.diff(run)) == len(np.unique(run)) - 1:
                return True
        return False

    s = BlockShuffleSampler(chunks, window=4, seed=0)
    order = np.array(list(s))
    assert np.array_equal(np.sort(order), np.arange(100))
    assert contiguous_runs(order)
    assert not np.array_equal(order, np.sort(order))
    assert np.array_equal(order, np.array(list(s)))  # same epoch, same order
    s.set_epoch(1)
    assert not np.array_equal(order, np.array(list(s)))
    assert contiguous_runs(np.array(list(s)))
    shares = [list(BlockShuffleSampler(chunks, 4, 0, num_replicas=3, rank=r)) for r in range(3)]
    assert all(len(x) == 34 for x in shares)
    assert set().union(*map(set, shares)) == set(range(100))


def test_block_shuffle_gives_each_worker_its_own_runs():
    blocks = np.repeat(np.arange(40), 6)  # 240 items, 6 per block
    s = BlockShuffleSampler(blocks, window=2, seed=3, batch_size=8, num_workers=3)
    order = np.array(list(s))
    assert np.array_equal(np.sort(order), np.arange(240))
    batches_ = order[: len(order) // 8 * 8].reshape(-1, 8)
    full = len(batches_) - 3  # the last few batches may mix streams
    seen = [set(blocks[batches_[b]].tolist()) for b in range(full)]
    for w in range(3):
        mine = set().union(*seen[w::3])
        others = set().union(*(x for v in range(3) if v != w for x in seen[v::3]))
        assert len(mine & others) <= 2  # at most the blocks a spilling sample shares


def test_block_shuffle_decodes_each_block_about_once(make_store):
    st = make_store(n=60, fmt="zarr", chunk_frames=256, shard_chunks=2)
    ds = SkeletonDataset(st, None, indices=np.arange(60), sampler=S2V)
    loader = make_loader(ds, 6, True, 0, seed=0, drop_last=False, block_window=2)
    assert isinstance(loader.sampler, BlockShuffleSampler)
    batches(loader)
    blocks = -(-int(st.offsets[-1]) // 256)
    assert ds._cache.decoded <= blocks + blocks // 2 + 1
    two = SkeletonDataset(st, None, indices=np.arange(60), block_chunks=2)
    assert two.block_frames == 512 and np.array_equal(two.block_ids(), two.starts // 512)


def test_make_loader_settings():
    ds = type("D", (), {"__len__": lambda self: 10, "__getitem__": lambda self, i: i})()
    loader = make_loader(ds, 4, True, 0, seed=0, drop_last=True)
    assert isinstance(loader.sampler, torch.utils.data.RandomSampler)
    assert loader.pin_memory == torch.cuda.is_available()
    assert list(loader)[0].shape == (4,)
    a = [b.tolist() for b in make_loader(ds, 4, True, 0, seed=1, drop_last=False)]
    b = [b.tolist() for b in make_loader(ds, 4, True, 0, seed=1, drop_last=False)]
    assert a == b
    assert make_loader(ds, 4, False, 2, seed=0, drop_last=False).persistent_workers


def test_make_loader_distributed_uses_a_distributed_sampler(tmp_path):
    dist = torch.distributed
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ds = type("D", (), {"__len__": lambda self: 10, "__getitem__": lambda self, i: i})()
        loader = make_loader(ds, 4, True, 0, seed=0, drop_last=False, distributed=True)
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
        assert sorted(torch.cat(list(loader)).tolist()) == list(range(10))
    finally:
        dist.destroy_process_group()


def test_positions_type_is_plain_data():
    pos = Positions(np.zeros((1, 3), np.int64))
    assert pos.hi is None and np.array_equal(pos.nearest(), pos.lo)
    rot = rotation_matrices(torch.zeros(2, 3))
    assert torch.equal(rotate(torch.ones(2, 4, 3), rot), torch.ones(2, 4, 3))
