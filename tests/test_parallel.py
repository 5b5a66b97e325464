"""The converters' ordered parallel map (preprocess/parallel.py)."""

import os
import time

import pytest

from s2v.errors import S2VError
from s2v.preprocess.parallel import Workers


def _square_slowly(batch):
    """Later items of a batch finish first if they are cheap: order must not depend on it."""
    out = []
    for x in batch:
        time.sleep(0.002 * (x % 3))
        out.append((x * x, os.getpid()))
    return out


def _die_at_five(batch):
    if 5 in batch:
        os._exit(3)
    return batch


def test_results_come_in_task_order_from_every_worker():
    batches = [list(range(k, k + 3)) for k in range(0, 60, 3)]
    with Workers(3) as w:
        got = [r for done in w.map(_square_slowly, batches) for r in done]
    assert [v for v, _ in got] == [x * x for x in range(60)]
    assert len({pid for _, pid in got}) == 3 and os.getpid() not in {pid for _, pid in got}


def test_a_dead_worker_is_an_error_not_a_hang():
    with Workers(2) as w:
        with pytest.raises(S2VError, match="worker 2 died"):
            for _ in w.map(_die_at_five, [[0], [5], [1], [2]]):
                pass


def _fail_on_three(batch):
    if 3 in batch:
        raise ValueError("three is not allowed")
    return batch


def test_an_exception_in_a_worker_is_raised_with_its_message():
    with Workers(2) as w:
        got = []
        with pytest.raises(S2VError, match="worker 2: ValueError: three is not allowed"):
            for done in w.map(_fail_on_three, [[0], [3], [1]]):
                got += done
        assert got == [0]


def test_write_thread_runs_tasks_in_the_parent():
    with Workers(1) as w:
        res = w.apply_async(os.getpid, ())
        assert res.get() == os.getpid() and res.ready()


def test_an_abandoned_map_stops_its_workers():
    with Workers(2) as w:
        for _ in w.map(_square_slowly, [list(range(50))] * 20):
            break  # workers are mid-batch, results unread
        assert not w._idle
    assert not any(p.is_alive() for p in w._procs)
    assert {p.exitcode for p in w._procs} <= {0, -15}  # finished or terminated


def test_result_pipes_hold_a_whole_batch():
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("no pipe sizes on this platform")
    with open("/proc/sys/fs/pipe-max-size") as f:
        if int(f.read()) < 1 << 20:
            pytest.skip("pipes are limited below 1 MB here")
    with Workers(2) as w:
        for conn in w._result_conns + w._task_conns:
            assert fcntl.fcntl(conn.fileno(), fcntl.F_GETPIPE_SZ) == 1 << 20
        assert [r for done in w.map(_square_slowly, [[1], [2]]) for r, _ in done] == [1, 4]


def test_threads_keep_task_order_and_report_an_exception():
    from s2v.preprocess.parallel import Threads

    batches = [list(range(k, k + 3)) for k in range(0, 60, 3)]
    with Threads(3) as t:
        got = [r for done in t.map(_square_slowly, batches) for r in done]
        assert [v for v, _ in got] == [x * x for x in range(60)]
        got = []
        with pytest.raises(S2VError, match="thread: ValueError: three is not allowed"):
            for done in t.map(_fail_on_three, [[0], [3], [1]]):
                got += done
        assert got == [0]
        assert t.apply_async(os.getpid, ()).get() == os.getpid()
