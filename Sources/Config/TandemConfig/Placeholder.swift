// placeholder for TandemConfig
