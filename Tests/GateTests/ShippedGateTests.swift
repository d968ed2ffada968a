import Capture
import Foundation
import Gate
import Inference
import Testing

/// The gate as shipped (embedded cry detectors — the default YAMNet + cry head, and the CRNN a small board
/// may choose — and reason model, default settings) on real recordings: the contract the rest of the
/// pipeline relies on, checked end to end inside the Gate module.
@Suite("Shipped gate on real recordings")
struct ShippedGateTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static let detectors = ["yamnet", "crnn"]

    static func events(_ name: String, _ detector: String) throws -> [GateEvent] {
        try events(samples: try AudioFile.read(path: fixtures.appendingPathComponent(name).path), detector)
    }

    /// `dropping`: chunk numbers the gate never sees, as capture drops them for a gate that fell behind
    /// (their sample indices are skipped).
    static func events(samples: [Float], _ detector: String, dropping: (Int) -> Bool = { _ in false }) throws -> [GateEvent] {
        let gate = try CryGate(detector: try CryDetectorModel.embedded(kind: detector), reasonModel: try ModelBundle.embeddedDefault())
        var out: [GateEvent] = []
        let t0 = Date(timeIntervalSince1970: 0)
        // 512-sample chunks, as the capture stage delivers them by default.
        for start in stride(from: 0, to: samples.count, by: 512) where !dropping(start / 512) {
            let end = min(samples.count, start + 512)
            out += gate.process(Array(samples[start..<end]), startIndex: Int64(start),
                                timestamp: t0.addingTimeInterval(Double(start) / 16_000))
        }
        return out + gate.finish()
    }

    @Test("an infant cry is one episode: a start in the first seconds, then an end with a reason", arguments: detectors)
    func cryIsOneEpisode(_ detector: String) throws {
        let events = try Self.events("cry-hungry.flac", detector)
        var starts: [Double] = [], ends = 0, reason: String?
        for event in events {
            switch event {
            case let .cryStarted(_, _, t, _, _, _): starts.append(t)
            case let .cryEnded(_, _, _, _, _, _, estimate): ends += 1; reason = estimate.reason
            default: break
            }
        }
        #expect(starts.count == 1 && ends == 1, "\(events)")
        #expect((starts.first ?? 99) < 3.0)
        // The label set of the embedded model, or `unknown` when it is not confident.
        let allowed = try ModelBundle.embeddedDefault().labels + [ReasonEstimate.unknown]
        #expect(reason.map(allowed.contains) == true, "reason \(String(describing: reason))")
    }

    /// An overloaded node loses chunks (every few, or a second at once): the YAMNet detector once kept
    /// appending past the gaps, then scored shifted audio, went deaf and finally trapped (a soak crash).
    @Test("audio lost to a gate that fell behind still gives one episode", arguments: detectors, ["every 9th", "a burst"])
    func droppedChunks(_ detector: String, _ pattern: String) throws {
        let cry = try AudioFile.read(path: Self.fixtures.appendingPathComponent("cry-hungry.flac").path)
        // Two cries with the loss in between and inside: 14 s, 437 chunks.
        let audio = cry + cry
        let dropping: (Int) -> Bool = pattern == "a burst" ? { (150..<200).contains($0) } : { $0 % 9 == 4 }
        let events = try Self.events(samples: audio, detector, dropping: dropping)
        let starts = events.compactMap { if case let .cryStarted(_, _, t, _, _, _) = $0 { t } else { nil } }
        let ends = events.filter { if case .cryEnded = $0 { true } else { false } }.count
        #expect(!starts.isEmpty && starts.count == ends, "\(detector), \(pattern): \(events)")
        #expect((starts.first ?? 99) < 3.0, "\(detector), \(pattern): \(starts)")
    }

    /// People talking for minutes is the commonest sound in a home, and the visible data has little of it
    /// (FSDD's digits are half a second each): a cry model once passed the evaluation yet fired here.
    @Test("two minutes of adult speech with short pauses start no episode, whatever the phase",
          arguments: detectors, [0, 1, 2, 3])
    func talkingIsNotACry(_ detector: String, _ phase: Int) throws {
        let speech = try AudioFile.read(path: Self.fixtures.appendingPathComponent("speech.flac").path)
        let one = speech + [Float](repeating: 0, count: 4000)
        var audio: [Float] = []
        while audio.count < 120 * 16_000 + one.count { audio += one }
        // Shift the start so the analysis grid meets the speech at other points.
        let offset = phase * 2048 + phase * 16_000
        let episodes = try Self.events(samples: Array(audio[offset..<(offset + 120 * 16_000)]), detector)
            .filter { if case .cryStarted = $0 { return true } else { return false } }.count
        #expect(episodes == 0, "\(detector), phase \(phase)")
    }

    @Test("adult speech and a barking dog start no episode", arguments: detectors, ["speech.flac", "dog.flac"])
    func notACry(_ detector: String, _ name: String) throws {
        let events = try Self.events(name, detector)
        let starts = events.filter { if case .cryStarted = $0 { return true } else { return false } }
        #expect(starts.isEmpty, "\(name): \(starts)")
    }
}
