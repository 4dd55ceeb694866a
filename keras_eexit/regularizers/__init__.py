"""Regularisers for sequential training: the empirical Fisher of EWC."""

from keras_eexit.regularizers.fisher import empirical_fisher
from keras_eexit.regularizers.fisher import exit_logits
from keras_eexit.regularizers.fisher import fisher_variables
from keras_eexit.regularizers.fisher import squared_gradients
