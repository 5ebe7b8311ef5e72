"""Layers with Keras's names, arguments and weight layouts."""

from lamina.layers import preprocessing as _preprocessing
from lamina.layers.activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from lamina.layers.adaptive_pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
)
from lamina.layers.attention import Attention, MultiHeadAttention
from lamina.layers.attention_extra import AdditiveAttention, GroupQueryAttention
from lamina.layers.bidirectional import Bidirectional
from lamina.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from lamina.layers.convolutional import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    Convolution1D,
    Convolution1DTranspose,
    Convolution2D,
    Convolution2DTranspose,
    Convolution3D,
    Convolution3DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
    SeparableConvolution1D,
    SeparableConvolution2D,
)
from lamina.layers.core import Activation, Dense, Identity, Lambda
from lamina.layers.einsum_dense import EinsumDense
from lamina.layers.embedding import Embedding, Masking
from lamina.layers.gru import GRU, GRUCell
from lamina.layers.input_layer import Input, InputLayer
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.layer_serialization import deserialize, serialize
from lamina.layers.lstm import LSTM, LSTMCell
from lamina.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from lamina.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    UnitNormalization,
)
from lamina.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from lamina.layers.preprocessing import *  # noqa: F403  (the family lists its own names)
from lamina.layers.recurrent import RNN
from lamina.layers.regularization import (
    ActivityRegularization,
    AlphaDropout,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
)
from lamina.layers.resampling import (
    Cropping1D,
    Cropping2D,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from lamina.layers.reshaping import Flatten, Permute, RepeatVector, Reshape
from lamina.layers.reversible_embedding import ReversibleEmbedding
from lamina.layers.rms_normalization import RMSNormalization
from lamina.layers.rnn_cells import StackedRNNCells
from lamina.layers.simple_rnn import SimpleRNN, SimpleRNNCell
from lamina.layers.spatial_3d import Cropping3D, SpatialDropout3D, UpSampling3D, ZeroPadding3D
from lamina.layers.spectral_normalization import SpectralNormalization
from lamina.layers.time_distributed import TimeDistributed
from lamina.layers.wrapper import Wrapper

__all__ = [*_preprocessing.__all__,
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D",
    "AvgPool3D", "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D",
    "DepthwiseConv1D", "DepthwiseConv2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "SeparableConv1D", "SeparableConv2D",
    "Activation", "Dense", "Dropout", "Flatten", "Identity", "Input", "InputLayer",
    "Lambda", "Layer", "Reshape",
    # normalization, regularization, attention, merging, reshaping, activations (issue 3)
    "ActivityRegularization", "Add", "AlphaDropout", "Attention", "Average",
    "BatchNormalization", "Concatenate", "Cropping1D", "Cropping2D", "Dot", "ELU",
    "GaussianDropout", "GaussianNoise", "GroupNormalization", "LayerNormalization",
    "LeakyReLU", "Maximum", "Minimum", "MultiHeadAttention", "Multiply",
    "PReLU", "Permute", "ReLU", "RepeatVector", "Softmax", "SpatialDropout1D",
    "SpatialDropout2D", "Subtract", "UnitNormalization", "UpSampling1D", "UpSampling2D",
    "ZeroPadding1D", "ZeroPadding2D", "add", "average", "concatenate", "dot", "maximum",
    "minimum", "multiply", "subtract",
    # embedding, masking, recurrent (issue 3)
    "Bidirectional", "Embedding", "GRU", "GRUCell", "LSTM", "LSTMCell", "Masking", "RNN",
    "SimpleRNN", "SimpleRNNCell", "TimeDistributed",
    # Drop-in Keras I: remaining core layers
    "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "Conv3DTranspose",
    "Convolution1D", "Convolution1DTranspose", "Convolution2D", "Convolution2DTranspose",
    "Convolution3D", "Convolution3DTranspose", "Cropping3D", "RMSNormalization",
    "SeparableConvolution1D", "SeparableConvolution2D", "SpatialDropout3D", "UpSampling3D",
    "ZeroPadding3D", "AdditiveAttention", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    "EinsumDense", "GroupQueryAttention", "StackedRNNCells", "deserialize", "serialize",
    "InputSpec", "Wrapper", "SpectralNormalization", "ReversibleEmbedding",
]
