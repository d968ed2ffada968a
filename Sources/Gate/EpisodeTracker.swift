import Foundation

/// Turns a sequence of analysed windows into cry episodes with hysteresis: an episode starts after
/// `minCryWindows` cry windows in a row, sends an update every `updateIntervalSeconds`, and ends
/// `hangoverSeconds` after its last cry window. Pure state, no audio: easy to test exhaustively.
///
/// The reason of an episode is `softmax(mean of log p)` over its cry windows (the same rule as
/// `RecordingClassifier` uses for a recording), reported as `unknown` below `reasonMinConfidence`.
public struct EpisodeTracker: Sendable {
    /// One analysed window: its end time and cry probability; `reasonLogProbabilities` when it was a cry
    /// window (the reason model only runs on those).
    public struct Window: Sendable {
        public var time: Double
        public var date: Date
        public var cryProbability: Double
        public var reasonLogProbabilities: [Double]?
        /// Audio the window covered (nil: the full analysis window).
        public var seconds: Double?

        public init(time: Double, date: Date, cryProbability: Double, reasonLogProbabilities: [Double]?, seconds: Double? = nil) {
            self.time = time
            self.seconds = seconds
            self.date = date
            self.cryProbability = cryProbability
            self.reasonLogProbabilities = reasonLogProbabilities
        }
    }

    public var settings: GateSettings
    public let labels: [String]
    /// Duration of audio one window covers (onset is placed this far before the first cry window's end).
    public let windowSeconds: Double

    private var pendingCry: [Window] = []
    private var episode: (id: UUID, onset: Double, lastCry: Double, lastUpdate: Double, windows: Int, logSum: [Double], crySum: Double)?

    public init(settings: GateSettings, labels: [String], windowSeconds: Double, defaultThreshold: Double = 0.5) {
        self.settings = settings
        self.defaultThreshold = defaultThreshold
        self.labels = labels
        self.windowSeconds = windowSeconds
    }

    public var isCrying: Bool { episode != nil }
    public var currentEpisode: UUID? { episode?.id }

    /// The threshold in force (settings, else the cry model's recommendation given at init, else 0.5).
    public var threshold: Double { settings.cryThreshold ?? defaultThreshold }
    public let defaultThreshold: Double

    public func isCry(_ w: Window) -> Bool { w.cryProbability >= threshold }

    /// Feeds one analysed window; returns the episode events it causes.
    public mutating func add(_ w: Window) -> [GateEvent] {
        var events: [GateEvent] = []
        let cry = isCry(w) && w.reasonLogProbabilities != nil
        if var e = episode {
            if cry {
                e.lastCry = w.time
                e.windows += 1
                e.crySum += w.cryProbability
                for (i, v) in w.reasonLogProbabilities!.enumerated() { e.logSum[i] += v }
                if w.time - e.lastUpdate >= settings.updateIntervalSeconds {
                    e.lastUpdate = w.time
                    events.append(.cryUpdated(episode: e.id, at: w.date, streamTime: w.time, estimate: estimate(e.logSum, e.windows)))
                }
                episode = e
            } else if w.time - e.lastCry >= settings.hangoverSeconds {
                events += end(at: w.time, date: w.date)
            }
            return events
        }
        guard cry else {
            pendingCry.removeAll()
            return events
        }
        pendingCry.append(w)
        guard pendingCry.count >= settings.minCryWindows else { return events }
        var logSum = [Double](repeating: 0, count: labels.count)
        for p in pendingCry { for (i, v) in p.reasonLogProbabilities!.enumerated() { logSum[i] += v } }
        let onset = max(0, pendingCry[0].time - (pendingCry[0].seconds ?? windowSeconds))
        let crySum = pendingCry.reduce(0) { $0 + $1.cryProbability }
        let e = (id: UUID(), onset: onset, lastCry: w.time, lastUpdate: w.time, windows: pendingCry.count, logSum: logSum, crySum: crySum)
        episode = e
        pendingCry.removeAll()
        events.append(.cryStarted(episode: e.id, at: w.date.addingTimeInterval(onset - w.time), streamTime: onset,
                                  cryConfidence: w.cryProbability, estimate: estimate(logSum, e.windows), detectedAt: w.date))
        return events
    }

    /// Ends an open episode (input ended, shutdown, model swap that changes labels).
    public mutating func end(at time: Double, date: Date) -> [GateEvent] {
        guard let e = episode else { return [] }
        episode = nil
        return [.cryEnded(episode: e.id, at: date, streamTime: time, duration: e.lastCry - e.onset,
                          cryWindows: e.windows, cryConfidence: e.crySum / Double(max(e.windows, 1)),
                          estimate: estimate(e.logSum, e.windows))]
    }

    func estimate(_ logSum: [Double], _ count: Int) -> ReasonEstimate {
        let mean = logSum.map { $0 / Double(max(count, 1)) }
        let m = mean.max() ?? 0
        let exps = mean.map { exp($0 - m) }
        let total = exps.reduce(0, +)
        let p = exps.map { $0 / total }
        let best = p.indices.max { p[$0] < p[$1] } ?? 0
        var probabilities: [String: Double] = [:]
        for (label, v) in zip(labels, p) { probabilities[label] = (v * 10_000).rounded() / 10_000 }
        let confidence = p.isEmpty ? 0 : p[best]
        let reason = confidence >= settings.reasonMinConfidence && !labels.isEmpty ? labels[best] : ReasonEstimate.unknown
        return ReasonEstimate(reason: reason, confidence: (confidence * 10_000).rounded() / 10_000, probabilities: probabilities)
    }
}
