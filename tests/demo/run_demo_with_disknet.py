"""Runs demo.py's main with DiskNet instead of a checkpoint (the GUI test knows the exact mask
every click must give). Usage: python run_demo_with_disknet.py RADIUS[:DELAY] [demo options],
DELAY being seconds of sleep per network call (a slow model)."""

import sys

from demo_fakes import DiskNet  # this script's folder is on sys.path

from isegm.demo.cli import main

if __name__ == "__main__":
    radius, _, delay = sys.argv[1].partition(":")
    sys.exit(main(sys.argv[2:], model=DiskNet(radius=float(radius), delay=float(delay or 0))))
