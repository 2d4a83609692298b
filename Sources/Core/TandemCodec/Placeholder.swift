// placeholder for TandemCodec
