import TandemCore

extension LinkSession {
    /// What one side of the link is and expects. Data role and transport role are
    /// independent (see `LinkTransportRole`).
    public struct Configuration: Hashable, Sendable {
        public var pair: LinkName
        public var localSite: LinkName
        /// The only site this side talks to; a HELLO naming any other is refused.
        public var peerSite: LinkName
        public var dataRole: LinkDataRole
        public var transportRole: LinkTransportRole
        /// Required for a sender. A receiver sets it when its spool already holds
        /// a stream, and leaves it nil on an empty spool to adopt the sender's.
        public var stream: StreamID?
        /// Bytes of batch frames sent but not yet durable at the receiver. Must
        /// cover the link's bandwidth-delay product for full speed: 100 Mbit/s at
        /// 80 ms round trip needs about 1 MB, 1 Gbit/s about 10 MB.
        public var windowBytes: Int
        public var heartbeatInterval: Duration
        /// Silence longer than this closes the connection. Several intervals, so
        /// that one delayed heartbeat on a congested link is not a disconnect.
        public var heartbeatTimeout: Duration
        /// The largest frame accepted or sent (type + payload). Both sites must
        /// agree, and it must exceed the largest batch frame plus 9 bytes.
        public var maximumFrameLength: Int

        /// 32 MiB: well above the bandwidth-delay product of the links Tandem
        /// targets, and small enough that a reconnect resends little.
        public static let defaultWindowBytes = 32 * 1024 * 1024
        public static let defaultHeartbeatInterval: Duration = .seconds(1)
        public static let defaultHeartbeatTimeout: Duration = .seconds(10)

        public init(
            pair: LinkName, localSite: LinkName, peerSite: LinkName, dataRole: LinkDataRole,
            transportRole: LinkTransportRole, stream: StreamID? = nil,
            windowBytes: Int = Configuration.defaultWindowBytes,
            heartbeatInterval: Duration = Configuration.defaultHeartbeatInterval,
            heartbeatTimeout: Duration = Configuration.defaultHeartbeatTimeout,
            maximumFrameLength: Int = LinkFrameLimits.defaultMaximumFrameLength
        ) {
            self.pair = pair
            self.localSite = localSite
            self.peerSite = peerSite
            self.dataRole = dataRole
            self.transportRole = transportRole
            self.stream = stream
            self.windowBytes = windowBytes
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatTimeout = heartbeatTimeout
            self.maximumFrameLength = maximumFrameLength
        }

        /// The largest batch frame the link can carry under `maximumFrameLength`.
        public var maximumBatchBytes: Int { maximumFrameLength - LinkFrameLimits.batchLengthOverhead }

        public func validate() throws(LinkConfigurationError) {
            guard localSite != peerSite else {
                throw LinkConfigurationError(
                    "the peer site is this site (\"\(localSite)\")",
                    hint: "Set [link] peer_site to the other site's name.")
            }
            if dataRole == .sender, stream == nil {
                throw LinkConfigurationError(
                    "a sender must name the stream it ships",
                    hint: "This is a bug in the agent's link setup; report it.")
            }
            guard windowBytes > 0 else {
                throw LinkConfigurationError("window of \(windowBytes) bytes", hint: "Use a window of at least 1 MiB.")
            }
            guard heartbeatInterval > .zero else {
                throw LinkConfigurationError(
                    "heartbeat interval of \(heartbeatInterval.secondsText)", hint: "Use an interval of about 1 s.")
            }
            guard heartbeatTimeout > heartbeatInterval else {
                throw LinkConfigurationError(
                    "heartbeat timeout \(heartbeatTimeout.secondsText) is not longer than the interval \(heartbeatInterval.secondsText)",
                    hint: "Use a timeout of several heartbeat intervals, such as 10 s for a 1 s interval.")
            }
            let frameRange = LinkFrameLimits.minimumMaximumFrameLength...LinkFrameLimits.largestExpressibleFrameLength
            guard frameRange.contains(maximumFrameLength) else {
                throw LinkConfigurationError(
                    "maximum frame length \(maximumFrameLength) is outside \(frameRange.lowerBound)...\(frameRange.upperBound)",
                    hint:
                        "Keep the default of \(LinkFrameLimits.defaultMaximumFrameLength) bytes unless batches are larger."
                )
            }
        }
    }
}
