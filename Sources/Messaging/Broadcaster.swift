import Synchronization

/// Fans one producer out to any number of `AsyncStream` subscribers.
///
/// `AsyncStream` supports a single consumer; the client's messages and connection states are wanted by several
/// (the node publisher, the command router, tests), so each caller gets its own stream. Thread-safe, so the
/// libmosquitto thread can yield into it directly.
final class Broadcaster<Element: Sendable>: Sendable {
    private struct Subscriber {
        let continuation: AsyncStream<Element>.Continuation
        let onDrop: (@Sendable (Element) -> Void)?
    }

    private struct Subscribers {
        var next: UInt64 = 0
        var continuations: [UInt64: Subscriber] = [:]
        var finished = false
    }

    private let subscribers = Mutex(Subscribers())
    private let buffering: AsyncStream<Element>.Continuation.BufferingPolicy

    init(buffering: AsyncStream<Element>.Continuation.BufferingPolicy = .unbounded) {
        self.buffering = buffering
    }

    /// A new stream that sees every element yielded from now on.
    ///
    /// - Parameters:
    ///   - buffering: this stream's own limit (default: the broadcaster's).
    ///   - onDrop: called (on the producer's thread) with each element the limit pushed out, so a subscriber
    ///     that must answer everything it was sent can answer those too.
    func subscribe(buffering: AsyncStream<Element>.Continuation.BufferingPolicy? = nil,
                   onDrop: (@Sendable (Element) -> Void)? = nil) -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: buffering ?? self.buffering)
        let id: UInt64? = subscribers.withLock { state in
            guard !state.finished else { return nil }
            let id = state.next
            state.next += 1
            state.continuations[id] = Subscriber(continuation: continuation, onDrop: onDrop)
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
        for target in targets {
            if case let .dropped(lost) = target.continuation.yield(element) { target.onDrop?(lost) }
        }
    }

    func finish() {
        let targets = subscribers.withLock { state in
            state.finished = true
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for target in targets { target.continuation.finish() }
    }
}
