"""keras_eexit.export"""
