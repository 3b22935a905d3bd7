"""hwgen: quantized transformers from ONNX to bit-exact FPGA accelerators."""

__version__ = "0.1.0"
