"""Multi-exit models: the `MultiExitModel` chain and the model zoo."""

from keras_eexit.models.backbone_split import split_backbone
from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.models.applications import mobilenet_v2_exits
from keras_eexit.models.applications import resnet50_exits
from keras_eexit.models.cifar_resnet import cifar_resnet
from keras_eexit.models.cnn1d import cnn1d
from keras_eexit.models.loading import load_model
from keras_eexit.models.msdnet import msdnet_cifar
from keras_eexit.models.msdnet_imagenet import msdnet_imagenet
from keras_eexit.models.ranet import ranet_cifar
from keras_eexit.models.registry import MODELS
from keras_eexit.models.registry import get_model
from keras_eexit.models.small_cnn import small_cnn
from keras_eexit.models.train_step import StepContributor
from keras_eexit.models.train_step import TrainStep
from keras_eexit.models.text_transformer import text_transformer_exits
from keras_eexit.models.vgg16_exits import vgg16_exits
from keras_eexit.models.vit import vit_exits

__all__ = [
    "MODELS",
    "MultiExitModel",
    "StepContributor",
    "TrainStep",
    "cifar_resnet",
    "cnn1d",
    "get_model",
    "load_model",
    "mobilenet_v2_exits",
    "msdnet_cifar",
    "msdnet_imagenet",
    "ranet_cifar",
    "resnet50_exits",
    "small_cnn",
    "split_backbone",
    "text_transformer_exits",
    "vgg16_exits",
    "vit_exits",
]
