import ArgumentParser
import Feedback
import Foundation
import Inference

/// `model train-head`: the next cry head from the fleet's feedback (`fleet export-feedback` folders), to be
/// signed and sent back with `fleet push-model`. The small-data path; training/yamnet_head.py --feedback
/// retrains from scratch with the public data and the feedback together.
struct ModelTrainHeadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-head",
        abstract: "Retrain a cry head's output layer on exported feedback (not_cry = negatives, reasons = cries).",
        discussion: """
        Prints the patches used per node and the head's mean cry probability on them before and after. Refuses (exit 1,
        nothing written) a head under which fewer of the answered cries' patches reach the gate threshold than under
        the head it starts from (more than 2 points fewer): contradictory answers (the same sound "not a cry" at one
        home and a cry at another) would otherwise deafen every node it is pushed to. --force writes it anyway.
        """
    )
    @Option(name: .customLong("feedback"), help: ArgumentHelp("A fleet export-feedback folder (repeatable).", valueName: "dir"))
    var folders: [String]
    @Option(help: ArgumentHelp("The head to start from (default: the embedded one).", valueName: "file")) var head: String?
    @Option(help: "Version of the new head (higher than the nodes run).") var version: String
    @Option(help: ArgumentHelp("Output model file.", valueName: "file")) var out: String
    @Option(help: "Gradient steps.") var steps = 300
    @Option(help: "Pull towards the starting weights.") var l2 = 0.01
    @Flag(help: "Write the head even when answered cries fall under the gate threshold.") var force = false

    func validate() throws {
        guard !folders.isEmpty else { throw ValidationError("give at least one --feedback DIR") }
    }

    func run() throws {
        let path = head ?? EmbeddedModel.cryHead.source
        let bytes = try head.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) } ?? EmbeddedModel.cryHead.bytes
        let base = try EmbeddingHead.load(bytes: bytes, source: path)
        var examples: [HeadFineTuning.Example] = []
        for folder in folders {
            for (line, embeddings) in try FeedbackExportFolder.read(URL(fileURLWithPath: folder)) where line.embeddingDim > 0 {
                let cry = line.label != FeedbackBook.notCry
                for p in 0..<(embeddings.count / line.embeddingDim) {
                    examples.append(.init(embedding: Array(embeddings[p * line.embeddingDim..<(p + 1) * line.embeddingDim]), cry: cry,
                                          group: "feedback:\(line.nodeID)"))
                }
            }
        }
        var options = HeadFineTuning.Options()
        options.steps = steps
        options.l2 = l2
        let trained = try HeadFineTuning.fineTune(headFile: bytes, examples: examples, version: version, options: options)
        let next = try EmbeddingHead.load(bytes: trained, source: out)
        func mean(_ h: EmbeddingHead, cry: Bool) -> String {
            let p = examples.filter { $0.cry == cry }.map { e in e.embedding.withUnsafeBufferPointer { h.cryProbability(embedding: $0) } }
            return p.isEmpty ? "-" : String(format: "%.3f", p.reduce(0, +) / Double(p.count))
        }
        var rows = [["GROUP", "CRY PATCHES", "NOT-CRY PATCHES"]]
        for g in Set(examples.map(\.group)).sorted() {
            let mine = examples.filter { $0.group == g }
            rows.append([g, "\(mine.filter(\.cry).count)", "\(mine.filter { !$0.cry }.count)"])
        }
        printTable(rows)
        print("mean cry probability, cry patches:     \(mean(base, cry: true)) -> \(mean(next, cry: true))")
        print("mean cry probability, not-cry patches: \(mean(base, cry: false)) -> \(mean(next, cry: false))")
        let threshold = next.metadata.gate?.threshold ?? base.metadata.gate?.threshold ?? 0.5
        func heard(_ h: EmbeddingHead) -> Double? {
            let cries = examples.filter(\.cry)
            guard !cries.isEmpty else { return nil }
            return Double(cries.filter { e in e.embedding.withUnsafeBufferPointer { h.cryProbability(embedding: $0) } >= threshold }.count) / Double(cries.count)
        }
        if let before = heard(base), let after = heard(next) {
            print(String(format: "answered cry patches at or above the threshold %.3f: %.1f%% -> %.1f%%", threshold, 100 * before, 100 * after))
            if after < before - 0.02 {
                let why = "the new head hears fewer of the answered cries than the one it starts from (contradictory answers? the same sound answered 'not a cry' and a reason)"
                guard force else { throw CLIError(message: "refused: \(why); nothing written (--force writes it anyway)") }
                print("warning: \(why); written anyway (--force)")
            }
        }
        try Data(trained).write(to: URL(fileURLWithPath: out))
        print("wrote \(out): \(next.metadata.name) \(next.metadata.version) (from \(base.metadata.version)); sign and send it with fleet push-model --key")
    }
}
