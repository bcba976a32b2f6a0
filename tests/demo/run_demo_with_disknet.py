"""Runs demo.py's main with DiskNet instead of a checkpoint (the GUI test knows the exact mask
every click must give). Usage: python run_demo_with_disknet.py RADIUS[:DELAY|:@HOLD] [demo
options], DELAY being seconds of sleep per network call (a slow model), HOLD a file while which
exists every network call waits."""

import sys

from demo_fakes import DiskNet  # this script's folder is on sys.path

from isegm.demo.cli import run

if __name__ == "__main__":
    radius, _, slow = sys.argv[1].partition(":")
    hold = slow[1:] if slow.startswith("@") else None
    delay = 0.0 if hold or not slow else float(slow)
    run(sys.argv[2:], model=DiskNet(radius=float(radius), delay=delay, hold=hold))
