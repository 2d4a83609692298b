// placeholder for TandemConfigTests
