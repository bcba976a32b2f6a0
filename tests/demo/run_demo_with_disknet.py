"""Runs demo.py's main with DiskNet instead of a checkpoint (the GUI test knows the exact mask
every click must give). Usage: python run_demo_with_disknet.py RADIUS [demo.py options]."""

import sys

from demo_fakes import DiskNet  # this script's folder is on sys.path

from isegm.demo.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[2:], model=DiskNet(radius=float(sys.argv[1]))))
