import Foundation
import Gate
import Testing

/// The episode state machine on synthetic window sequences: hysteresis, updates, hang-over, `unknown`.
struct EpisodeTrackerTests {
    static let labels = ["belly_pain", "burping", "discomfort", "hungry", "tired"]
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    static func hungry(_ p: Double = 0.9) -> [Double] {
        let rest = (1 - p) / 4
        return labels.map { log($0 == "hungry" ? p : rest) }
    }

    static func window(_ t: Double, cry: Double, reason: [Double]? = hungry()) -> EpisodeTracker.Window {
        .init(time: t, date: t0.addingTimeInterval(t), cryProbability: cry, reasonLogProbabilities: cry >= 0.5 ? reason : nil)
    }

    static func tracker(minCry: Int = 2, hangover: Double = 3, update: Double = 5) -> EpisodeTracker {
        var s = GateSettings()
        s.minCryWindows = minCry
        s.hangoverSeconds = hangover
        s.updateIntervalSeconds = update
        return EpisodeTracker(settings: s, labels: labels, windowSeconds: 3)
    }

    @Test("one episode: start after the onset windows, periodic updates, end after the hang-over")
    func oneEpisode() {
        var tr = Self.tracker()
        var events: [GateEvent] = []
        // 0..4 s quiet, 4..20 s crying (windows every 0.5 s), then quiet until 30 s.
        for i in 0...60 {
            let t = Double(i) * 0.5
            events += tr.add(Self.window(t, cry: (4...20).contains(t) ? 0.95 : 0.05))
        }
        guard case let .cryStarted(id, at, onset, conf, est, detected) = events.first else { Issue.record("no start"); return }
        #expect(onset == 4 - 3)  // the second cry window (t = 4.5) confirms; onset is the first cry window's start
        #expect(at == Self.t0.addingTimeInterval(onset))
        #expect(detected == Self.t0.addingTimeInterval(4.5))
        #expect(conf == 0.95)
        #expect(est.reason == "hungry")
        let updates = events.filter { if case .cryUpdated = $0 { true } else { false } }
        #expect(updates.count == 3)  // at 9.5, 14.5, 19.5
        guard case let .cryEnded(endID, _, endTime, duration, windows, cryConf, summary) = events.last else { Issue.record("no end"); return }
        #expect(endID == id)
        #expect(endTime == 23)  // last cry window 20 + hang-over 3
        #expect(duration == 20 - 1)
        #expect(windows == 33)  // 4.0, 4.5, ... 20.0
        #expect(abs(cryConf - 0.95) < 1e-9)
        #expect(summary.reason == "hungry" && abs(summary.confidence - 0.9) < 0.001)
        #expect(events.count == 1 + 3 + 1)
        #expect(!tr.isCrying)
    }

    @Test("a single cry window below the onset count starts nothing")
    func isolatedBlip() {
        var tr = Self.tracker(minCry: 2)
        var events: [GateEvent] = []
        for i in 0..<20 { events += tr.add(Self.window(Double(i), cry: i == 5 || i == 9 ? 0.9 : 0.1)) }
        #expect(events.isEmpty)
    }

    @Test("short gaps shorter than the hang-over do not split an episode")
    func gapsDoNotSplit() {
        var tr = Self.tracker(minCry: 1, hangover: 3)
        var events: [GateEvent] = []
        for i in 0..<40 {
            let t = Double(i) * 0.5
            let crying = t < 15 && !(5..<7).contains(t)  // a 2 s pause (breath) inside the episode
            events += tr.add(Self.window(t, cry: crying ? 0.9 : 0.1))
        }
        events += tr.end(at: 20, date: Self.t0.addingTimeInterval(20))
        #expect(events.filter { if case .cryStarted = $0 { true } else { false } }.count == 1)
        #expect(events.filter { if case .cryEnded = $0 { true } else { false } }.count == 1)
    }

    @Test("an uncertain reason is reported as unknown, with the probabilities attached")
    func unknownReason() {
        var tr = Self.tracker(minCry: 1)
        let flat = Self.labels.map { _ in log(0.2) }
        let events = tr.add(Self.window(3, cry: 0.9, reason: flat))
        guard case let .cryStarted(_, _, _, _, est, _) = events.first else { Issue.record("no start"); return }
        #expect(est.reason == ReasonEstimate.unknown)
        #expect(est.probabilities.count == 5 && est.probabilities.values.allSatisfy { abs($0 - 0.2) < 1e-4 })
    }

    @Test("settings out of range are rejected naming the key")
    func settingsValidation() {
        var s = GateSettings()
        s.cryThreshold = 1.5
        #expect(throws: GateSettingsError(key: "gate.cry_threshold", reason: "must be in (0, 1)")) { try s.validate() }
        s = GateSettings()
        s.hangoverSeconds = -1
        #expect(throws: GateSettingsError.self) { try s.validate() }
        #expect(throws: Never.self) { try GateSettings().validate() }
    }
}

/// Stage 1 on real and synthetic signals.
struct ActivityDetectorTests {
    @Test("silence stays inactive; a loud burst over a steady background is active; the floor adapts")
    func activity() {
        var det = ActivityDetector()
        let silence = [Float](repeating: 0, count: 16_000)
        #expect(silence.withUnsafeBufferPointer { det.process($0, startTime: 0) } == 0)
        // Steady background at about -40 dBFS for 20 s: the floor meets it within its 5 s window.
        var state: UInt32 = 1
        func noise(_ n: Int, _ amp: Float) -> [Float] {
            (0..<n).map { _ in state = state &* 1_664_525 &+ 1_013_904_223; return amp * (Float(state >> 8) / Float(1 << 24) - 0.5) * 3.46 }
        }
        var lastActive = 0
        for s in 0..<20 { lastActive = noise(16_000, 0.01).withUnsafeBufferPointer { det.process($0, startTime: Double(1 + s)) } }
        #expect(lastActive == 0)
        #expect(abs(det.floorDBFS - (-40)) < 3)
        // A burst 20 dB louder is active.
        let burst = noise(16_000, 0.1)
        #expect(burst.withUnsafeBufferPointer { det.process($0, startTime: 21) } > 25)
    }
}
