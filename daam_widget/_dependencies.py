"""Importing diffusers' pipeline classes without a warning the user did not cause.

diffusers' pipeline modules import transformers' image-processor classes (for the safety checker's
feature extractor). Without torchvision, transformers 5 then warns that each falls back to its PIL
version. daam-widget uses no image processor, so that warning says nothing to its users: it is dropped
while those imports run, and only it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_FALLBACK = "requires torchvision (not installed); falling back to"


class _DropImageProcessorFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _FALLBACK not in record.getMessage()


@contextmanager
def quiet_pipeline_imports() -> Iterator[None]:
    """Within the block, transformers' torchvision-fallback warning for image processors is not shown."""
    logger = logging.getLogger("transformers.utils.import_utils")
    dropped = _DropImageProcessorFallback()
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)
