#!/usr/bin/env python
"""Interactive segmentation demo: python demo.py [--checkpoint PATH] [--cpu] [--image PATH]."""

from isegm.demo.cli import run

if __name__ == "__main__":
    run()
