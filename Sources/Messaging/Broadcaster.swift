import Synchronization

/// Fans one producer out to any number of `AsyncStream` subscribers.
///
/// `AsyncStream` supports a single consumer; the client's messages and connection states are wanted by several
/// (the node publisher, the command router, tests), so each caller gets its own stream. Thread-safe, so the
/// libmosquitto thread can yield into it directly.
final class Broadcaster<Element: Sendable>: Sendable {
    private struct Subscribers {
        var next: UInt64 = 0
        var continuations: [UInt64: AsyncStream<Element>.Continuation] = [:]
        var finished = false
    }

    private let subscribers = Mutex(Subscribers())
    private let buffering: AsyncStream<Element>.Continuation.BufferingPolicy

    init(buffering: AsyncStream<Element>.Continuation.BufferingPolicy = .unbounded) {
        self.buffering = buffering
    }

    /// A new stream that sees every element yielded from now on.
    func subscribe() -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: buffering)
        let id: UInt64? = subscribers.withLock { state in
            guard !state.finished else { return nil }
            let id = state.next
            state.next += 1
            state.continuations[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func yield(_ element: Element) {
        let targets = subscribers.withLock { Array($0.continuations.values) }
        for continuation in targets { continuation.yield(element) }
    }

    func finish() {
        let targets = subscribers.withLock { state in
            state.finished = true
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in targets { continuation.finish() }
    }
}
