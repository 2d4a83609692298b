// placeholder for TandemCoreTests
