"""The store: writer and reader contract, both backends, motion prior kernel."""

import multiprocessing as mp
import pickle
import zlib

import numpy as np
import pytest

import s2v
from s2v.errors import StoreError
from s2v.motion import motion_prior, motion_prior_numpy
from s2v.store import decode_strings, encode_strings


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_clips_motion_columns_and_splits_round_trip(make_store, fmt):
    st = make_store(n=9, fmt=fmt, chunk_frames=32, shard_chunks=2)
    from conftest import random_walk_clips

    clips = random_walk_clips(9)
    assert len(st) == 9 and st.fmt == fmt
    for i, clip in enumerate(clips):
        assert np.array_equal(st.clip(i), clip)
        expected = motion_prior(clip).astype(np.float16).astype(np.float32)
        assert np.array_equal(st.motion(i), expected)
    assert list(st.samples["name"])[:2] == ["S001C001P001R001A001", "S001C001P002R001A002"]
    assert st.samples["frames"].tolist() == [len(c) for c in clips]
    assert st.split("xview", "test").tolist() == [1, 3, 5, 7]
    assert st.label_names == ["class 0", "class 1", "class 2"]
    with pytest.raises(IndexError):
        st.clip(9)


def test_a_store_pickles_without_its_handle_and_reopens(make_store):
    st = make_store(n=5, fmt="h5")
    st.clip(0)
    clone = pickle.loads(pickle.dumps(st))
    assert clone._be is None
    assert np.array_equal(clone.clip(3), st.clip(3))


def _read_in_child(st, i, q):
    q.put(st.clip(i).sum())


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_a_store_opened_before_fork_reads_in_the_child(make_store, fmt):
    st = make_store(n=5, fmt=fmt)
    st.clip(0)  # handle opened in the parent
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=_read_in_child, args=(st, 4, q))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == pytest.approx(float(st.clip(4).sum()))


def test_foreign_or_missing_stores_are_rejected(tmp_path, make_store):
    with pytest.raises(StoreError, match="no such store"):
        s2v.open(tmp_path / "nope.zarr")
    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(StoreError, match="not a skeleton2vec store"):
        s2v.open(tmp_path / "other.zarr")
    st = make_store(n=3)
    g = zarr.open_group(str(st.path), mode="r+")
    g.attrs["format_version"] = 99
    with pytest.raises(StoreError, match="format version 99"):
        s2v.open(st.path)


def test_string_columns_round_trip():
    names = ["S001C001P001R001A001", "x", ""]
    assert decode_strings(encode_strings(names)).tolist() == names


def test_motion_prior_kernel_matches_the_numpy_specification():
    rng = np.random.default_rng(0)
    j = rng.normal(size=(50, 2, 25, 3)).astype(np.float32)
    j[10:20, 1] = 0  # actor 2 absent: no motion at its appearance or disappearance
    m = motion_prior(j)
    np.testing.assert_allclose(m, motion_prior_numpy(j), rtol=1e-6)
    assert np.all(m[-1] == 0) and np.all(m[9:20, 1] == 0)
    assert m[20, 1].min() > 0
    assert motion_prior(j[:1]).shape == (1, 2, 25)


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
@pytest.mark.parametrize("threaded", [False, True])
def test_writer_takes_one_actor_samples_across_blocks(tmp_path, fmt, threaded):
    """Samples given without their all-zero actor 2 are stored with zeros there; samples
    that straddle a block boundary (here every 48 frames) are split across blocks intact."""
    from s2v.preprocess.parallel import Workers
    from s2v.store import StoreWriter

    rng = np.random.default_rng(3)
    clips = [rng.normal(size=(int(t), 2, 25, 3)).astype(np.float32) for t in [30, 50, 7, 100, 1]]
    for k in (0, 2, 3):
        clips[k][:, 1] = 0
    pool = Workers(1) if threaded else None
    path = tmp_path / ("s.zarr" if fmt == "zarr" else "s.h5")
    w = StoreWriter(path, fmt, chunk_frames=16, shard_chunks=3, pool=pool)
    for c in clips:
        m = motion_prior(c)
        if not c[:, 1].any():  # the narrowed form the converters send
            c, m = c[:, :1], m[:, :1]
        w.append(c, m)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])])
    crc = np.array([zlib.crc32(c.data) for c in clips], np.uint32)
    w.finish(offsets, {"crc_joints": crc, "crc_motion": crc}, {}, {})
    if pool is not None:
        pool.close()
    st = s2v.open(path)
    for i, c in enumerate(clips):
        stored_motion = motion_prior(c).astype(np.float16)  # the store's motion dtype
        assert np.array_equal(st.clip(i), c) and np.array_equal(st.motion(i), stored_motion)


@pytest.mark.parametrize("threaded", [False, True])
def test_shards_written_directly_are_byte_identical_to_zarrs(tmp_path, threaded):
    """The writer's own shard encoder (s2v.store.ShardFormat) against zarr's pipeline on the
    same frames: every chunk and index file identical, including all-zero chunks."""
    from s2v.preprocess.parallel import Workers
    from s2v.store import StoreWriter

    rng = np.random.default_rng(5)
    clips = [rng.normal(size=(int(t), 2, 25, 3)).astype(np.float32) for t in [70, 90, 41, 33]]
    clips[1][:, 1] = 0
    clips.insert(2, np.zeros((64, 2, 25, 3), np.float32))  # a chunk of zeros
    stores = {}
    for direct in (True, False):
        pool = Workers(1) if threaded else None
        path = tmp_path / f"{direct}.zarr"
        w = StoreWriter(path, "zarr", chunk_frames=16, shard_chunks=4, pool=pool)
        assert w._shards is not None
        if not direct:
            w._shards = None  # zarr's own write path
        for c in clips:
            w.append(c, motion_prior(c))
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])])
        crc = np.array([zlib.crc32(c.data) for c in clips], np.uint32)
        w.finish(offsets, {"crc_joints": crc, "crc_motion": crc}, {}, {})
        if pool is not None:
            pool.close()
        stores[direct] = path
    files = [p.relative_to(stores[True]) for p in stores[True].rglob("*") if p.is_file()]
    files = sorted(p for p in files if p.parts[0] in ("joints", "motion") and p.parts[1] == "c")
    assert len(files) == 2 * 5  # 4 full shards and the tail, each array
    for rel in files:
        assert (stores[True] / rel).read_bytes() == (stores[False] / rel).read_bytes(), rel
    st = s2v.open(stores[True])
    for i, c in enumerate(clips):
        assert np.array_equal(st.clip(i), c)


def test_chunks_read_from_the_shard_files_equal_zarrs_reads(make_store):
    """The direct chunk readers (the training loader's) against zarr, for every chunk of both
    arrays: full shards written directly, the tail shard written by zarr, the array's end
    inside a chunk."""
    st = make_store(n=24, fmt="zarr", chunk_frames=64, shard_chunks=4)
    total = int(st.offsets[-1])
    assert total % 256 and total > 3 * 256  # several shards and a partial one
    rj, rm = st.chunk_readers()
    for c in range((total + 63) // 64):
        a, b = c * 64, min(total, c * 64 + 64)
        j = np.empty((b - a, 2, 25, 3), np.float32)
        m = np.empty((b - a, 2, 25), np.float16)
        rj.read_into(c, j)
        rm.read_into(c, m)
        assert np.array_equal(j, np.asarray(st.joints[a:b]))
        assert m.tobytes() == np.asarray(st.motion_array[a:b]).tobytes()


def test_chunk_readers_read_an_absent_chunk_as_zero_and_reject_a_damaged_index(make_store):
    import zarr

    from s2v.errors import StoreError

    st = make_store(n=24, fmt="zarr", chunk_frames=64, shard_chunks=4)
    arr = zarr.open_array(st.path / "joints", mode="r+", config={"write_empty_chunks": False})
    arr[64:128] = 0  # zarr leaves chunk 1 out of shard 0 (its index marks it absent)
    rj, _ = st.chunk_readers()
    assert int(rj._shard_index(0)[1, 0]) == 2**64 - 1  # absent, not an all-zero chunk
    j = np.full((64, 2, 25, 3), 7, np.float32)
    rj.read_into(1, j)
    assert not j.any()
    rj.read_into(0, j)
    assert np.array_equal(j, np.asarray(arr[0:64]))
    shard = st.path / "joints" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 1  # a bit of the index
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="shard index damaged"):
        st.chunk_readers()[0].read_into(0, j)


def test_hdf5_stores_have_no_chunk_readers(make_store):
    assert make_store(n=4, fmt="h5").chunk_readers() is None
