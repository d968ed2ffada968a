import Foundation

enum ResourceUsage {
    /// Peak resident set size of this process (getrusage ru_maxrss, KiB on Linux).
    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
