"""The reference layers compared with PyTorch and Keras: cases, harness, adapters, audit, speed."""
