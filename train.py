#!/usr/bin/env python
"""Train in one process (CPU or one GPU): python train.py models/<experiment>.py [options]."""

import sys

from isegm.engine.cli import parse_args

if __name__ == "__main__":
    parse_args(sys.argv[1:], distributed=False)  # --help and bad flags before torch loads
    from isegm.engine.launch import main

    sys.exit(main(sys.argv[1:], distributed=False))
