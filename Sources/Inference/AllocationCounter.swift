import CInferenceSupport

/// Counts heap allocations made by the calling thread (glibc only), to check that the inference hot
/// path allocates nothing. Backed by CInferenceSupport, which wraps malloc & co. with one thread-local
/// increment each; `isAvailable` is false on other C libraries and counts stay 0 there.
public enum AllocationCounter {
    public static var isAvailable: Bool { di_allocation_counting_available() != 0 }

    /// Allocations made by this thread so far.
    public static var current: UInt64 { UInt64(di_thread_allocation_count()) }

    /// Allocations `body` made on this thread.
    public static func count<E: Error>(_ body: () throws(E) -> Void) throws(E) -> UInt64 {
        let before = current
        try body()
        return current - before
    }
}
