#!/usr/bin/env python
"""Interactive segmentation demo: python demo.py [--checkpoint PATH] [--cpu] [--image PATH]."""

import sys

from isegm.demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
