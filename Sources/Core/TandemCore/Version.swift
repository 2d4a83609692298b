public enum TandemVersion { public static let string = "0.1.0" }
