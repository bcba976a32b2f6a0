#!/usr/bin/env python
"""Distributed training: one process per GPU of --gpus (or --nproc CPU processes with --cpu),
or run unchanged under torchrun for multi-node:

    python dis_train.py models/adaptivevit_base448_cclvs.py --gpus 0,1,2,3 --batch-size 40 --amp
    torchrun --nnodes 2 --nproc_per_node 8 ... dis_train.py models/adaptivevit_base448_cclvs.py --amp
"""

import sys

from isegm.engine.cli import parse_args

if __name__ == "__main__":
    parse_args(sys.argv[1:], distributed=True)  # --help and bad flags before torch loads
    from isegm.engine.launch import main

    sys.exit(main(sys.argv[1:], distributed=True))
