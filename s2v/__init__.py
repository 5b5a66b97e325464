"""skeleton2vec: skeleton dataset stores and self-supervised skeleton action recognition.

The core package is torch-free: skeleton layouts, the store format (Zarr / HDF5) and its
reader, motion priors. ``s2v.preprocess`` converts raw datasets, ``s2v.train`` trains.
"""

from s2v.errors import S2VError, StoreError
from s2v.store import Store, open_store

__version__ = "0.1.0"

open = open_store  # noqa: A001  (``s2v.open(path)`` is the public entry point)

__all__ = ["S2VError", "Store", "StoreError", "__version__", "open", "open_store"]
