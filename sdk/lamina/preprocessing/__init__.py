"""``keras.preprocessing``: image and sequence helpers and the dataset builders.

The same functions as in :mod:`lamina.utils`; Keras exports them under both names.
"""

from lamina.preprocessing import image, sequence
from lamina.utils.image_dataset_utils import image_dataset_from_directory
from lamina.utils.text_dataset_utils import text_dataset_from_directory
from lamina.utils.timeseries_dataset_utils import timeseries_dataset_from_array

__all__ = ["image", "image_dataset_from_directory", "sequence", "text_dataset_from_directory",
           "timeseries_dataset_from_array"]
