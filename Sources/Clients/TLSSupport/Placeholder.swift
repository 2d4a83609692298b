// placeholder for TLSSupport
