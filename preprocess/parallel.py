"""Ordered parallel maps for the converters: worker threads (NTU), or forked worker
processes fed through their own pipes (PKU-MMD).

Threads (``Threads``) suit work that runs mostly in numba kernels compiled with
``nogil=True``: no pickling, no pipes, the results are the workers' own arrays. With the NTU
batch kernel (fastpath.py) holding the GIL for a small share of a file's time, two threads
converted 4,000 files in 1.89 s against 2.22 s for two processes (medians of 5 interleaved
pairs, threads faster in each). Processes (``Workers``):

why not ``multiprocessing.Pool``: its three handler threads and shared task queue cost the
parent about as much CPU per file as a worker spends parsing it, which on a 2-core machine
left the second worker no core (two workers were no faster than one). Here each worker has a
task pipe and a result pipe; batch ``i`` goes to worker ``i % n``, so each worker's results
arrive in task order and the parent reads them round-robin, with no shared queue. One reader
thread per worker receives eagerly (a worker never waits on a busy parent), into a bounded
queue (memory stays flat). Shard writes (``apply_async``) run in one parent thread: Blosc
releases the GIL, and the data does not have to be pickled back to a worker.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

try:
    import fcntl
except ImportError:  # Windows has none
    fcntl = None  # type: ignore[assignment]

from s2v.errors import S2VError

_AHEAD = 2  # batches sent ahead to each worker
_QUEUED = 4  # batches of results held per worker


def _serve(tasks, results) -> None:  # pragma: no cover - runs in the worker processes
    """A worker: (fn, args) in, fn(args) out, until None or the parent's end closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and closes us
    try:
        while True:
            job = tasks.recv()
            if job is None:
                return
            fn, args = job
            try:
                out = fn(args)
            except Exception as exc:  # a bug, not bad input (the converters report that)
                out = _Failed(f"{type(exc).__name__}: {exc}")
            results.send(out)
    except (EOFError, BrokenPipeError, OSError):
        return  # the parent is gone


def _widen_pipe(conn) -> None:
    """A 1 MB pipe buffer instead of Linux's 64 KB: a batch of results (about 0.3 MB) then
    goes through in one write instead of a dozen handoffs between the worker and the reader
    thread; measured 3-17 % faster conversions, in each of 9 interleaved pairs."""
    size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if size is None:
        return
    try:
        fcntl.fcntl(conn.fileno(), size, 1 << 20)
    except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default
        pass


class _Failed:
    """An exception raised by the mapped function in a worker, sent back as its message."""

    def __init__(self, message: str) -> None:
        self.message = message


class _Done:
    """What ``AsyncResult.get`` gives back for a thread task (the Pool API that
    ``StoreWriter`` uses)."""

    def __init__(self, fut: Future) -> None:
        self._fut = fut

    def ready(self) -> bool:
        return self._fut.done()

    def get(self) -> Any:
        return self._fut.result()


class Workers:
    """``n`` forked workers (create before opening files they must not inherit)."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.n = n
        self._procs = []
        self._task_conns = []
        self._result_conns = []
        for _ in range(n):
            t_recv, t_send = ctx.Pipe(duplex=False)
            r_recv, r_send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_serve, args=(t_recv, r_send), daemon=True)
            p.start()
            t_recv.close()
            r_send.close()
            _widen_pipe(t_send)
            _widen_pipe(r_recv)
            self._procs.append(p)
            self._task_conns.append(t_send)
            self._result_conns.append(r_recv)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="s2v-write")
        self._idle = True  # False while a map is unfinished: workers may be mid-batch

    def apply_async(self, fn: Callable, args: tuple) -> _Done:
        """Run ``fn(*args)`` in the parent's write thread."""
        return _Done(self._writer.submit(fn, *args))

    def map(self, fn: Callable[[Any], list], batches: Iterable[Any]) -> Iterator[list]:
        """fn(batch) for every batch, in order, computed by the workers."""
        batches = list(batches)
        queues = [queue.Queue(_QUEUED) for _ in range(self.n)]
        stop = threading.Event()
        counts = [len(batches[k :: self.n]) for k in range(self.n)]

        def reader(k: int) -> None:
            conn, q = self._result_conns[k], queues[k]
            for _ in range(counts[k]):
                try:
                    item = conn.recv()
                except (EOFError, OSError):
                    item = self._died(k)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if isinstance(item, S2VError) or stop.is_set():
                    return

        readers = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(self.n)]
        for t in readers:
            t.start()
        sent = 0

        def send_next() -> None:
            nonlocal sent
            if sent < len(batches):
                k = sent % self.n
                try:
                    self._task_conns[k].send((fn, batches[sent]))
                except OSError:  # BrokenPipeError: that worker is gone
                    raise self._died(k) from None
                sent += 1

        self._idle = False
        try:
            for _ in range(min(len(batches), _AHEAD * self.n)):
                send_next()
            for i in range(len(batches)):
                item = queues[i % self.n].get()
                if isinstance(item, S2VError):
                    raise item
                if isinstance(item, _Failed):
                    raise S2VError(f"conversion worker {i % self.n + 1}: {item.message}")
                send_next()
                yield item
            self._idle = True
        finally:
            stop.set()

    def _died(self, k: int) -> S2VError:
        self._procs[k].join(timeout=1)
        return S2VError(f"conversion worker {k + 1} died (exit code {self._procs[k].exitcode})")

    def close(self) -> None:
        """Finish the pending writes, stop the workers."""
        self._writer.shutdown(wait=True)
        for conn in self._task_conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for p in self._procs:
            if not self._idle:  # abandoned mid-map (an error, Ctrl-C): nothing to wait for
                p.terminate()
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        for conn in self._task_conns + self._result_conns:
            conn.close()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Threads:
    """``n`` worker threads with the API of :class:`Workers` (``map``, ``apply_async``,
    ``close``): batches are computed in order of submission, a bounded number ahead."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="s2v-work")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="s2v-write")

    def apply_async(self, fn: Callable, args: tuple) -> _Done:
        """Run ``fn(*args)`` in the write thread."""
        return _Done(self._writer.submit(fn, *args))

    def map(self, fn: Callable[[Any], list], batches: Iterable[Any]) -> Iterator[list]:
        """fn(batch) for every batch, in order; at most (_AHEAD + 1) * n batches in flight, so
        memory stays flat. An exception in a thread stops the map as an S2VError."""
        it = iter(batches)
        inflight: collections.deque[Future] = collections.deque()

        def submit() -> None:
            for b in it:
                inflight.append(self._pool.submit(fn, b))
                return

        for _ in range((_AHEAD + 1) * self.n):
            submit()
        try:
            while inflight:
                fut = inflight.popleft()
                try:
                    out = fut.result()
                except Exception as exc:  # a bug, not bad input (the converters report that)
                    raise S2VError(f"conversion thread: {type(exc).__name__}: {exc}") from exc
                submit()
                yield out
        finally:
            for fut in inflight:
                fut.cancel()

    def close(self) -> None:
        """Finish the pending writes; stop the threads (batches not started are dropped)."""
        self._writer.shutdown(wait=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Threads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
