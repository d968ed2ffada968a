import Synchronization

/// Counters of capture faults, readable from any task (metrics, `info`) while the capture thread runs.
public final class CaptureCounters: Sendable {
    private let state = Mutex(Snapshot())

    public struct Snapshot: Sendable, Equatable {
        public var overruns = 0
        public var opens = 0
        public var openFailures = 0
        public var deviceLosses = 0
        public var samplesDelivered: Int64 = 0
        public var available = false
        /// Chunks dropped because the consumer fell behind (the stream buffers 256).
        public var droppedChunks = 0
    }

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }
}
