/// Exponential backoff with a cap, for reopening devices and reconnecting: 0.5 s, 1 s, 2 s, … up to `cap`.
public struct Backoff: Sendable, Equatable {
    public var initial: Double
    public var cap: Double
    public private(set) var attempt = 0

    public init(initial: Double = 0.5, cap: Double = 30) {
        precondition(initial > 0 && cap >= initial)
        self.initial = initial
        self.cap = cap
    }

    /// The delay before the next attempt; each call doubles it up to the cap.
    public mutating func next() -> Double {
        defer { attempt += 1 }
        return min(cap, initial * Double(1 << min(attempt, 30)))
    }

    public mutating func reset() { attempt = 0 }
}
