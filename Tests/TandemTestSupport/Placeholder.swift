// placeholder for TandemTestSupport
