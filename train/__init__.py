"""s2v.train: Skeleton2vec pretraining and evaluation on skeleton stores (needs torch)."""
