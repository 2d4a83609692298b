// placeholder for TandemCodecTests
