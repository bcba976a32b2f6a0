#!/usr/bin/env python
"""Train in one process (CPU or one GPU): python train.py models/<experiment>.py [options]."""

import sys

from isegm.engine.launch import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], distributed=False))
