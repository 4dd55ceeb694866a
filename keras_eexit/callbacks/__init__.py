"""keras_eexit.callbacks"""
