"""Where a pipeline's model comes from, and :func:`create_pipeline` (``tl.create_pipeline``), the one way to build a
pipeline.

A *model provider* gives one exported model folder (``inference.yml`` + the static model) through one method,
:meth:`ModelProvider.exported`:

* :class:`LocalModel`: an exported folder you already have (``model_dir``);
* :class:`OfficialWeights`: a registered model with its official (COCO) weights, downloaded, exported and cached
  once; where they cannot be downloaded (as on a machine without internet) a one-line notice says so and its
  ``fallback`` provider runs instead;
* :class:`ShippedModel`: the quick-start model whose weights ship with the package (:data:`.quickstart.SHIPPED`),
  exported on first use (or, with other training settings, trained once).

A pipeline YAML names its model two ways (``SubModules.InstanceSegmentation``), and :func:`provider_for` picks the
provider: ``model_dir`` -> :class:`LocalModel` (a ``model_name`` beside it must be the model the folder holds);
``model_name`` only -> :class:`OfficialWeights` falling back to :class:`ShippedModel` (the quick-start model's own
name, or no name -> :class:`ShippedModel`). A ``model_dir=`` argument overrides the YAML; ``model=`` passes a
provider directly. ``pipeline.model_name`` and ``pipeline.model_source`` say what ran.

Providers are the only part of building a pipeline that needs the training stack (they export weights into an
inference model, importing the engine only when they do), so they live in the app layer; the pipeline layer
(:func:`tutorial_lib.pipeline.build_pipeline`) receives the resolved folder.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from . import quickstart
from .errors import UserError
from .pipeline import InstanceSegmentationPipeline, build_pipeline
from .pipeline.config import SUBMODULE, load_pipeline_config

PathLike = Union[str, Path]
Notice = Callable[[str], Any]


@dataclass(frozen=True)
class ExportedModel:
    """An exported model folder, the model it holds and where it came from (``model_dir``, ``official weights`` or
    ``quick-start model``)."""

    path: Path
    model_name: Optional[str]
    source: str


class ModelProvider(ABC):
    """Gives the exported model folder a pipeline runs."""

    @abstractmethod
    def exported(self) -> ExportedModel:
        """The exported folder (downloaded, exported or trained first where needed)."""

    @abstractmethod
    def describe(self) -> str:
        """What runs, in a few words, without downloading or exporting anything."""

    def fallback_phrase(self) -> str:
        """How a notice names this provider when it runs in place of another one."""
        return self.describe()

    def plan(self) -> str:
        """One line saying which model will run (nothing is downloaded)."""
        return f"model: {self.describe()}"


class LocalModel(ModelProvider):
    """An exported model folder; ``expected_name`` (a YAML's ``model_name``) must be the model it holds."""

    def __init__(self, path: PathLike, expected_name: Optional[str] = None) -> None:
        self.path = Path(path)
        self.expected_name = expected_name

    def _name(self) -> Optional[str]:
        if not (self.path / "inference.yml").is_file():
            raise UserError(f"model_dir {self.path} is not an exported model (no inference.yml); export one with "
                            "-o Global.mode=export")
        name: Optional[str] = quickstart.exported_model_name(self.path)
        if self.expected_name and name and self.expected_name != name:
            raise UserError(f"SubModules.{SUBMODULE}.model_name is {self.expected_name} but model_dir {self.path} "
                            f"holds {name} (its inference.yml); fix one of them")
        return name

    def exported(self) -> ExportedModel:
        return ExportedModel(self.path, self._name(), "model_dir")

    def describe(self) -> str:
        return f"{self._name()} from model_dir {self.path}"


class ShippedModel(ModelProvider):
    """The quick-start model: the shipped weights ``asset`` exported on first use, or with other ``epochs`` /
    ``num_train`` trained once on the generated sample; cached under ``home`` (default ``$TUTORIAL_LIB_HOME``)."""

    name = quickstart.MODEL

    def __init__(self, asset: PathLike = quickstart.SHIPPED, device: str = "cpu",
                 epochs: int = quickstart.DEFAULT_EPOCHS, num_train: int = quickstart.DEFAULT_TRAIN,
                 home: Optional[PathLike] = None) -> None:
        self.asset = Path(asset)
        self.device, self.epochs, self.num_train, self.home = device, epochs, num_train, home

    def exported(self) -> ExportedModel:
        path = quickstart.quickstart_model_dir(device=self.device, epochs=self.epochs, num_train=self.num_train,
                                               home=self.home, shipped=self.asset)
        return ExportedModel(Path(path), self.name, "quick-start model")

    def describe(self) -> str:
        return f"the quick-start model {self.name}"

    def fallback_phrase(self) -> str:
        return f"the embedded quick-start model {self.name}"

    def plan(self) -> str:
        return f"model: {self.describe()} (trained once on the generated sample)"


class OfficialWeights(ModelProvider):
    """``name`` with its official (COCO, 80 classes) weights, exported and cached under ``home``; when they cannot
    be downloaded, ``fallback`` runs instead after one ``notice`` line (without a fallback the error stands)."""

    def __init__(self, name: str, fallback: Optional[ModelProvider] = None, home: Optional[PathLike] = None,
                 notice: Notice = print) -> None:
        self.name, self.fallback, self.home, self.notice = name, fallback, home, notice

    def exported(self) -> ExportedModel:
        try:
            return ExportedModel(Path(quickstart.official_model_dir(self.name, home=self.home)), self.name,
                                 "official weights")
        except UserError as exc:
            if self.fallback is None:
                raise
            self.notice(f"notice: official weights of {self.name} are not available ({_short(exc)}); running "
                        f"{self.fallback.fallback_phrase()} instead")
            return self.fallback.exported()

    def describe(self) -> str:
        return f"{self.name} with its official weights"

    def plan(self) -> str:
        home = Path(self.home or quickstart.cache_home())
        if (home / "official" / self.name / "inference" / "inference.yml").is_file():
            return f"model: {self.describe()} (cached)"
        text = f"model: {self.describe()}, downloaded on first use"
        if self.fallback is not None:
            text += f"; where they cannot be downloaded, {self.fallback.describe()} runs instead"
        return text


def provider_for(config: Dict[str, Any], device: str = "cpu", model_dir: Optional[PathLike] = None,
                 home: Optional[PathLike] = None, notice: Notice = print) -> ModelProvider:
    """The provider of the model a validated pipeline ``config`` names (see the module docstring); ``model_dir``
    (an exported folder) overrides the YAML, whose ``model_name`` then does not apply."""
    sub = config["SubModules"][SUBMODULE]
    if model_dir is not None:
        return LocalModel(model_dir)
    if sub.get("model_dir"):
        return LocalModel(sub["model_dir"], expected_name=sub.get("model_name"))
    shipped = ShippedModel(device=device, home=home)
    name = sub.get("model_name")
    if name and name != ShippedModel.name:
        return OfficialWeights(name, fallback=shipped, home=home, notice=notice)
    return shipped


def model_plan(config: Union[str, Dict[str, Any]], home: Optional[PathLike] = None) -> str:
    """One line saying which model a pipeline config (name, YAML path or dict) will run, downloading nothing."""
    return provider_for(load_pipeline_config(config), home=home).plan()


def _short(exc: Exception, limit: int = 160) -> str:
    text = str(exc).split("; ")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def create_pipeline(pipeline: Union[str, Dict[str, Any]] = "instance_segmentation", device: str = "cpu",
                    model_dir: Optional[PathLike] = None, run_mode: Optional[str] = None, use_hpip: bool = False,
                    *, model: Optional[ModelProvider] = None) -> InstanceSegmentationPipeline:
    """Build a pipeline (a registered name, a pipeline YAML or a dict) running the model its config names.

    ``model_dir`` (an exported model folder) overrides the YAML; ``model`` (a :class:`ModelProvider`, such as
    ``ShippedModel()`` or ``OfficialWeights("Mask-RT-DETR-S")``) overrides both. ``run_mode``: ``paddle``,
    ``mkldnn`` (oneDNN; the CPU default), ``onnxruntime``, ``openvino`` (CPU), ``trt_fp32``/``trt_fp16`` (GPU);
    ``use_hpip=True`` picks the backend instead. The returned pipeline's ``model_name`` and ``model_source`` say
    which model runs and where it came from.
    """
    if model is not None and model_dir is not None:
        raise UserError("create_pipeline got both model_dir and model; pass one of them (model=LocalModel(dir) "
                        "is model_dir=dir)")
    config = load_pipeline_config(pipeline)
    provider = model if model is not None else provider_for(config, device=device, model_dir=model_dir)
    resolved = provider.exported()
    return build_pipeline(config, resolved.path, device=device, run_mode=run_mode, use_hpip=use_hpip,
                          model_source=resolved.source)


__all__ = ["ExportedModel", "LocalModel", "ModelProvider", "OfficialWeights", "ShippedModel", "create_pipeline",
           "model_plan", "provider_for"]
