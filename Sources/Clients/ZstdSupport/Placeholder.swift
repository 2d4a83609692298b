// placeholder for ZstdSupport
