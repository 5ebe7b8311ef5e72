"""``keras.visualization``: draw boxes and masks on images (numpy) and plot galleries
(matplotlib, imported on first use)."""

from lamina.visualization.draw_bounding_boxes import draw_bounding_boxes
from lamina.visualization.draw_segmentation_masks import draw_segmentation_masks
from lamina.visualization.plot_galleries import (
    plot_bounding_box_gallery,
    plot_image_gallery,
    plot_segmentation_mask_gallery,
)

__all__ = ["draw_bounding_boxes", "draw_segmentation_masks", "plot_bounding_box_gallery",
           "plot_image_gallery", "plot_segmentation_mask_gallery"]
