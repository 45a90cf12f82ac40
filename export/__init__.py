"""Export of the trained encoder to ONNX / TensorRT and the model bundle (needs the ``train`` extra)."""
