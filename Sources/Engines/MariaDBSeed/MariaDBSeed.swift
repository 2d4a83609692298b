import TandemSeed
