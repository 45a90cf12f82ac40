"""The built-in region detector: a small CenterNet-style CNN (torch), its training on synthetic frames and ONNX export.

``model.py`` the network and its in-graph top-M decoding, ``data.py`` targets from synthetic annotations,
``train.py`` the training script, ``export.py`` the ONNX export with an ONNX Runtime parity check.
"""
