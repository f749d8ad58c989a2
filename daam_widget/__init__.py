"""daam-widget: DAAM heat maps of diffusers pipelines, as a Python API and a notebook widget.

>>> import daam_widget
>>> with daam_widget.trace(pipe) as tc:
...     out = pipe("a dog on a hat")
>>> maps = tc.heat_maps()
>>> maps["dog"], maps.mask("dog", tau=0.4)
"""

from ._batch import run
from ._gallery import DaamGallery
from ._heat_maps import HeatMaps
from ._image_attribution import attribute_image
from ._metrics import intersection_over_area, iou, mean_iou, threshold
from ._run_files import IndexRow, read_index
from ._step_maps import StepMaps
from ._trace import Trace, trace
from ._widget import DaamWidget
from ._words import Span

__all__ = [
    "DaamGallery",
    "DaamWidget",
    "HeatMaps",
    "IndexRow",
    "Span",
    "StepMaps",
    "Trace",
    "attribute_image",
    "intersection_over_area",
    "iou",
    "mean_iou",
    "read_index",
    "run",
    "threshold",
    "trace",
]
__version__ = "0.1.0"
