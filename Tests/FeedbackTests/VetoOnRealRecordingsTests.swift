import Capture
import Feedback
import Foundation
import Gate
import Inference
import TestSupport
import Testing

/// The shipped YAMNet body, cry head and reason model on a real infant cry: what the gate keeps as an
/// episode's evidence, what a "not a cry" answer on it does, what a confirmation does, and a head
/// retrained on such answers.
@Suite("Feedback on a real recording")
struct VetoOnRealRecordingsTests {
    static let cry = try! AudioFile.read(path: Recordings.url("cry-hungry.flac").path)

    static func run(veto: (any CryVeto)?) throws -> (events: [GateEvent], evidence: [EpisodeEvidence], vetoed: Int) {
        let gate = try CryGate(detector: try CryDetectorModel.embedded(kind: "yamnet"), reasonModel: try ModelBundle.embeddedDefault())
        gate.veto = veto
        var events: [GateEvent] = []
        let t0 = Date(timeIntervalSince1970: 0)
        for start in stride(from: 0, to: cry.count, by: 512) {
            events += gate.process(Array(cry[start..<min(cry.count, start + 512)]), startIndex: Int64(start),
                                   timestamp: t0.addingTimeInterval(Double(start) / 16_000))
        }
        events += gate.finish()
        return (events, gate.takeFinishedEvidence(), gate.vetoedPatches)
    }

    static func starts(_ events: [GateEvent]) -> Int { events.filter { if case .cryStarted = $0 { true } else { false } }.count }

    static var space: EmbeddingSpace {
        let s = try! EmbeddingHead.embedded().standardisation
        return EmbeddingSpace(mean: s.mean, scale: s.scale)
    }

    @Test("an episode's evidence: its firing patches' 1024-d embeddings, at most 16, all at or above the threshold")
    func evidence() throws {
        let (events, evidence, _) = try Self.run(veto: nil)
        #expect(Self.starts(events) == 1)
        let e = try #require(evidence.first)
        guard case let .cryStarted(id, _, _, _, _, _)? = events.first(where: { if case .cryStarted = $0 { true } else { false } }) else { return }
        #expect(e.episode == id && e.dimension == 1024 && e.patchCount >= 2 && e.patchCount <= 16)
        #expect(e.embeddings.count == e.patchCount * 1024 && e.cryPatches >= e.patchCount)
        let threshold = try EmbeddingHead.embedded().metadata.gate?.threshold ?? 0.5
        #expect(e.probabilities.allSatisfy { $0 >= threshold })
        #expect(e.meanEmbedding?.count == 1024)
    }

    @Test("'not a cry' on it silences that sound; a confirmed cry of it always counts")
    func vetoAndConfirmation() throws {
        let evidence = try #require(try Self.run(veto: nil).evidence.first)
        let patches = Self.space.projectRows(evidence.embeddings)
        let vetoed = try Self.run(veto: HomeVeto(space: Self.space, negatives: patches, positives: [], similarity: 0.8, margin: 0.05))
        #expect(Self.starts(vetoed.events) == 0 && vetoed.vetoed > 0, "\(vetoed.events)")
        let confirmed = try Self.run(veto: HomeVeto(space: Self.space, negatives: patches, positives: patches, similarity: 0.8, margin: 0.05))
        #expect(Self.starts(confirmed.events) == 1 && confirmed.vetoed == 0)
    }

    @Test("train-head: answers move the head (negatives down, cries kept), the file loads, self-tests and says what it learnt")
    func fineTuning() throws {
        let evidence = try #require(try Self.run(veto: nil).evidence.first)
        let head = try EmbeddingHead.embedded()
        let bytes = EmbeddedModel.cryHead.bytes
        let rows = (0..<evidence.patchCount).map { Array(evidence.embeddings[$0 * 1024..<($0 + 1) * 1024]) }
        // Half the patches said "not a cry" at one home, the other half confirmed at another.
        let half = rows.count / 2
        let examples = rows.enumerated().map { i, e in HeadFineTuning.Example(embedding: e, cry: i >= half, group: i < half ? "feedback:a" : "feedback:b") }
        let out = try HeadFineTuning.fineTune(headFile: bytes, examples: examples, version: "2.0.1")
        let next = try EmbeddingHead.load(bytes: out)
        #expect(next.metadata.version == "2.0.1" && next.runSelfTest().passed)
        func p(_ h: EmbeddingHead, _ e: [Float]) -> Double { e.withUnsafeBufferPointer { h.cryProbability(embedding: $0) } }
        let before = rows[..<half].map { p(head, $0) }.reduce(0, +), after = rows[..<half].map { p(next, $0) }.reduce(0, +)
        #expect(after < before)
        #expect(rows[half...].allSatisfy { p(next, $0) > 0.5 })
        guard case let .object(training)? = next.metadata.training, case let .object(feedback)? = training["feedback"] else {
            Issue.record("no training.feedback"); return
        }
        #expect(feedback["base_version"] == .string(head.metadata.version))
        #expect(feedback["groups"] == .array([.string("feedback:a"), .string("feedback:b")]))
        #expect(throws: (any Error).self) { try HeadFineTuning.fineTune(headFile: bytes, examples: [], version: "2.0.2") }
    }
}
