"""Image-size limits, in a module that imports nothing: the readers (:mod:`isegm.data.io`) and
the torch-free command lines (:mod:`isegm.annotation.defaults`) share one number."""

__all__ = ["DATASET_MAX_PIXELS", "DEFAULT_MAX_PIXELS"]

# Largest image accepted by the command line, the demo and the annotation server (--max-pixels):
# a 25 Mpx RGB image is 75 MB decoded, its float probabilities 100 MB more.
DEFAULT_MAX_PIXELS = 25_000_000
# Dataset readers read trusted files, some of them high-resolution scans: a wider bound that
# still stops a corrupt or hostile header from taking the machine's memory.
DATASET_MAX_PIXELS = 200_000_000
