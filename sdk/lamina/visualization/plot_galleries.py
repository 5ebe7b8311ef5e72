"""Image, bounding-box and segmentation-mask galleries, drawn with matplotlib.

matplotlib is imported when a gallery is plotted, never at ``import lamina``.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.visualization._common import check_batched, data_format_or_default, to_numpy
from lamina.visualization.draw_bounding_boxes import draw_bounding_boxes
from lamina.visualization.draw_segmentation_masks import draw_segmentation_masks


def _pyplot(function_name):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"The `{function_name}` function requires the `matplotlib` package. "
                          "Please install it with `pip install matplotlib`.") from None
    return plt


def _to_0_255(images, value_range):
    low, high = value_range
    if (low, high) == (0, 255):
        return images
    images = images.astype("float32")
    return (images - np.float32(low)) / np.float32(high - low) * np.float32(255)


def plot_image_gallery(images, y_true=None, y_pred=None, label_map=None, rows=None, cols=None,
                       value_range=(0, 255), scale=2, path=None, show=None, transparent=True,
                       dpi=60, legend_handles=None, data_format=None):
    """Plot a grid of images, optionally titled with true/predicted labels.

    Args:
        images: ``(batch, height, width, channels)`` images (or channels first).
        y_true: labels, looked up in ``label_map`` for the titles.
        y_pred: predictions, looked up in ``label_map``.
        label_map: dict from label to name (required with ``y_true``/``y_pred``).
        rows: grid rows (default ``ceil(sqrt(batch))``).
        cols: grid columns (default ``batch // rows``).
        value_range: the images' value range, mapped to ``[0, 255]``.
        scale: inches per image.
        path: file to save the figure to (instead of showing it).
        show: show the figure (default: when no ``path``).
        transparent: transparent background when saving.
        dpi: resolution when saving.
        legend_handles: matplotlib legend handles to add.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Raises:
        ImportError: if matplotlib is not installed.
        ValueError: for both ``path`` and ``show``, labels without ``label_map``, or
            images that are not 4D.
    """
    plt = _pyplot("plot_image_gallery")
    if path is not None and show:
        raise ValueError("plot_gallery() expects either `path` to be set, or `show` to be "
                         f"true. Received: path={path!r}, show={show!r}")
    if (y_true is not None or y_pred is not None) and label_map is None:
        raise ValueError("If `y_true` or `y_pred` are provided, a `label_map` must also be "
                         "provided. Received: label_map=None")
    show = show if show is not None else path is None
    data_format = data_format_or_default(data_format)
    images = to_numpy(images)
    if images.ndim != 4:
        raise ValueError("`plot_images_gallery()` requires you to batch your `np.array` "
                         f"samples together. Received: images.shape={images.shape}")
    batch_size = images.shape[0]
    rows = rows or int(math.ceil(math.sqrt(batch_size)))
    cols = cols or int(math.ceil(batch_size // rows))
    images = images[:min(rows * cols, batch_size)]
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    fig, axes = plt.subplots(nrows=rows, ncols=cols, figsize=(cols * scale, rows * scale),
                             frameon=False, layout="tight", squeeze=True, sharex="row",
                             sharey="col")
    fig.subplots_adjust(wspace=0, hspace=0)
    if isinstance(axes, np.ndarray) and axes.ndim == 1:
        axes = np.expand_dims(axes, 0 if rows == 1 else -1)
    if legend_handles is not None:
        fig.legend(handles=legend_handles, loc="lower center")
    images = _to_0_255(images, value_range)
    y_true = None if y_true is None else to_numpy(y_true)
    y_pred = None if y_pred is None else to_numpy(y_pred)
    for row in range(rows):
        for col in range(cols):
            index = row * cols + col
            axis = axes[row, col] if isinstance(axes, np.ndarray) else axes
            if index < len(images):
                image = images[index].astype("uint8")
                axis.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                            cmap="gray" if image.shape[-1] == 1 else None)
            axis.margins(x=0, y=0)
            axis.axis("off")
            title = []
            if y_true is not None and index < len(y_true):
                title.append(f"Label: {label_map.get(_key(y_true[index]), 'Unknown')}")
            if y_pred is not None and index < len(y_pred):
                title.append(f"Pred: {label_map.get(_key(y_pred[index]), 'Unknown')}")
            if title:
                axis.set_title("  ".join(title), fontsize=8)
    if path is not None:
        plt.savefig(fname=path, pad_inches=0, bbox_inches="tight", transparent=transparent,
                    dpi=dpi)
        plt.close(fig)
    elif show:
        plt.show()
        plt.close(fig)


def _key(value):
    return value.item() if isinstance(value, np.generic) else value


def plot_bounding_box_gallery(images, bounding_box_format, y_true=None, y_pred=None,
                              value_range=(0, 255), true_color=(0, 188, 212),
                              pred_color=(255, 235, 59), line_thickness=2, font_scale=1.0,
                              text_thickness=None, class_mapping=None,
                              ground_truth_mapping=None, prediction_mapping=None,
                              legend=False, legend_handles=None, rows=None, cols=None,
                              data_format=None, **kwargs):
    """Plot images with their true and predicted boxes drawn.

    Args:
        images: ``(batch, height, width, channels)`` images (or channels first).
        bounding_box_format: the boxes' format.
        y_true: ground-truth boxes dict (``boxes``, ``labels``).
        y_pred: predicted boxes dict (``boxes``, ``labels``, optionally ``confidences``).
        value_range: the images' value range.
        true_color: RGB colour of true boxes.
        pred_color: RGB colour of predicted boxes.
        line_thickness: box line width.
        font_scale: label size.
        text_thickness: kept for Keras.
        class_mapping: class id to name, for both.
        ground_truth_mapping: class id to name for ``y_true`` (default ``class_mapping``).
        prediction_mapping: class id to name for ``y_pred`` (default ``class_mapping``).
        legend: add a "Ground Truth"/"Prediction" legend.
        legend_handles: custom legend handles (not with ``legend``).
        rows: grid rows.
        cols: grid columns.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        **kwargs: passed to :func:`plot_image_gallery` (``path``, ``show``, ``scale``...).

    Raises:
        ImportError: if matplotlib is not installed.
        ValueError: for non-4D images or both ``legend`` and ``legend_handles``.
    """
    _pyplot("plot_bounding_box_gallery")
    from matplotlib import patches

    prediction_mapping = prediction_mapping or class_mapping
    ground_truth_mapping = ground_truth_mapping or class_mapping
    data_format = data_format_or_default(data_format)
    images = check_batched(images)
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    # Keras draws on the raw images and rescales afterwards (which overflows uint8 for
    # value_range=(0, 1)); Lamina rescales first, then draws.
    plotted = _to_0_255(images, value_range)
    draw = dict(bounding_box_format=bounding_box_format, line_thickness=line_thickness,
                text_thickness=text_thickness, font_scale=font_scale,
                data_format="channels_last")
    if y_true is not None:
        plotted = draw_bounding_boxes(plotted, y_true, color=true_color,
                                      class_mapping=ground_truth_mapping, **draw)
    if y_pred is not None:
        plotted = draw_bounding_boxes(plotted, y_pred, color=pred_color,
                                      class_mapping=prediction_mapping, **draw)
    if legend:
        if legend_handles:
            raise ValueError("Only pass `legend` OR `legend_handles` to "
                             "`keras.visualization.plot_bounding_box_gallery()`.")
        legend_handles = [
            patches.Patch(color=np.array(true_color) / 255.0, label="Ground Truth"),
            patches.Patch(color=np.array(pred_color) / 255.0, label="Prediction")]
    return plot_image_gallery(plotted, value_range=(0, 255), legend_handles=legend_handles,
                              rows=rows, cols=cols, **kwargs)


def plot_segmentation_mask_gallery(images, num_classes, value_range=(0, 255), y_true=None,
                                   y_pred=None, color_mapping=None, blend=True, alpha=0.8,
                                   ignore_index=-1, data_format=None, **kwargs):
    """Plot each image next to its true and predicted masks (one row per image).

    Args:
        images: ``(batch, height, width, channels)`` images (or channels first).
        num_classes: number of classes.
        value_range: the images' value range.
        y_true: true integer masks ``(batch, height, width, 1)``.
        y_pred: predicted integer masks.
        color_mapping: class id to RGB colour.
        blend: blend the mask colours over the image.
        alpha: opacity of the colours.
        ignore_index: mask value left unpainted.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        **kwargs: passed to :func:`plot_image_gallery`.

    Raises:
        ImportError: if matplotlib is not installed.
        ValueError: for non-4D images.
    """
    _pyplot("plot_segmentation_mask_gallery")
    data_format = data_format_or_default(data_format)
    images = check_batched(images)
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    batch_size = images.shape[0]
    draw = dict(num_classes=num_classes, color_mapping=color_mapping, alpha=alpha,
                ignore_index=ignore_index, blend=blend, data_format="channels_last")
    drawn = []
    for masks in (y_true, y_pred):
        if masks is None:
            continue
        masks = to_numpy(masks)
        if data_format == "channels_first":
            masks = masks.transpose(0, 2, 3, 1)
        drawn.append(draw_segmentation_masks(images, masks.astype("int32"), **draw))
    gallery = []
    for i in range(batch_size):
        gallery.append(images[i])
        gallery.extend(d[i] for d in drawn)
    return plot_image_gallery(np.stack(gallery, axis=0), value_range=value_range,
                              rows=batch_size, cols=1 + len(drawn), **kwargs)
