"""Reusable Keras 3 layers for recurrent attentive text-image fusion."""

from keras_layers.bilinear_upsampling import (
    BilinearConv2DTranspose,
    BilinearInitializer,
    bilinear_kernel,
)
from keras_layers.conv_gru import ConvGRU, ConvGRUCell
from keras_layers.gumbel_termination_gate import (
    GumbelTerminationGate,
    stop_distribution,
    stop_log_distribution,
)
from keras_layers.hierarchical_text_encoder import HierarchicalTextEncoder
from keras_layers.mixture_termination import (
    MixtureTermination,
    mixture_log_stop_probabilities,
    mixture_negative_log_likelihood,
    mixture_predict,
)
from keras_layers.recurrent_attentive_fusion import RecurrentAttentiveFusion
from keras_layers.temperature_schedules import (
    ConstantTemperature,
    ExponentialTemperature,
    LinearAnnealTemperature,
    TemperatureSchedule,
    get_temperature_schedule,
)
from keras_layers.text_attention import TextAttention, masked_softmax
from keras_layers.word_encoder import WordEncoder
