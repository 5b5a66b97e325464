"""``python -m s2v.train`` (and ``torchrun -m s2v.train``): the s2v-train command line."""

from s2v.train.cli import main

if __name__ == "__main__":
    main(prog_name="s2v-train")
