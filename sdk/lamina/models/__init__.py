"""Models: ``Sequential``, functional ``Model(inputs, outputs)``, subclassed ``Model``."""

from lamina.models.cloning import clone_model
from lamina.models.functional import Functional
from lamina.models.model import Model
from lamina.models.sequential import Sequential


def model_from_config(config, custom_objects=None, safe_mode=True):
    """Build a model (or layer) from its serialised config dict."""
    from lamina.saving.serialization import deserialize_keras_object

    return deserialize_keras_object(config, custom_objects=custom_objects, safe_mode=safe_mode)


def model_from_json(json_string, custom_objects=None, safe_mode=True):
    """Build a model from the JSON string ``model.to_json()`` returns."""
    import json

    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as exc:
        raise ValueError(f"model_from_json: not valid JSON ({exc})") from exc
    return model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002
    """Load a model from a ``.keras`` or legacy ``.h5`` file."""
    from lamina.saving.saving_api import load_model as _load

    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    """Save ``model`` to a ``.keras`` (or legacy ``.h5``) file (``keras.models.save_model``)."""
    from lamina.saving.saving_api import save_model as _save

    return _save(model, filepath, overwrite=overwrite, zipped=zipped, **kwargs)


__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model",
           "model_from_config", "model_from_json", "save_model"]
