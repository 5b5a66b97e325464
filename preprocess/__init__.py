"""s2v.preprocess: raw dataset conversion (NTU RGB+D, PKU-MMD) into skeleton stores. Torch-free."""
