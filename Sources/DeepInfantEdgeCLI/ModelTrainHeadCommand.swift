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
        discussion: "Prints the patches used per node and the head's mean cry probability on them before and after."
    )
    @Option(name: .customLong("feedback"), help: ArgumentHelp("A fleet export-feedback folder (repeatable).", valueName: "dir"))
    var folders: [String]
    @Option(help: ArgumentHelp("The head to start from (default: the embedded one).", valueName: "file")) var head: String?
    @Option(help: "Version of the new head (higher than the nodes run).") var version: String
    @Option(help: ArgumentHelp("Output model file.", valueName: "file")) var out: String
    @Option(help: "Gradient steps.") var steps = 300
    @Option(help: "Pull towards the starting weights.") var l2 = 0.01

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
        try Data(trained).write(to: URL(fileURLWithPath: out))
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
        print("wrote \(out): \(next.metadata.name) \(next.metadata.version) (from \(base.metadata.version)); sign and send it with fleet push-model --key")
    }
}
