import ArgumentParser
import Control
import Feedback
import Foundation
import Inference

/// `fleet feedback`: a caregiver's answer about one episode, sent as a fleet owner would (cmd/feedback).
struct FleetFeedbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feedback",
        abstract: "Label an episode (cmd/feedback): a reason label, not_cry, or --withdraw; --forget erases it.",
        discussion: "--episode latest labels the node's most recent episode, as Home Assistant's \"Last cry was\" select does."
    )
    @OptionGroup var connection: FleetConnectionOptions
    @Option(help: "The node.") var node: String
    @Option(help: ArgumentHelp("Episode id (from the event's episode_id), or latest.", valueName: "id")) var episode: String
    @Option(help: ArgumentHelp("A reason label of the node's model, or not_cry.", valueName: "label")) var label: String?
    @Flag(help: "Withdraw the answer given.") var withdraw = false
    @Flag(help: "Erase the episode from the node.") var forget = false

    func validate() throws {
        guard [label != nil, withdraw, forget].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --label L, --withdraw or --forget")
        }
    }

    func run() async throws {
        let fleet = try await connection.connect()
        let (episode, label, forget) = (self.episode, self.label, self.forget)
        let outcomes = try await fleet.send("feedback", payload: { id in
            var body: [String: JSONValue] = ["request_id": .string(id), "episode_id": .string(episode)]
            if forget { body["forget"] = .bool(true) } else { body["label"] = label.map { .string($0) } ?? .null }
            return Array(try JSONEncoder().encode(JSONValue.object(body)))
        }, to: .node(node), timeout: .seconds(connection.timeout))
        await fleet.disconnect()
        try reportOutcomes(outcomes, target: .node(node))
    }
}

/// `fleet forget-all`: erases a node's feedback store (cmd/forget {"all": true}).
struct FleetForgetAllCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forget-all", abstract: "Erase every stored episode and answer of a node.")
    @OptionGroup var connection: FleetConnectionOptions
    @Option(help: "The node.") var node: String

    func run() async throws {
        let fleet = try await connection.connect()
        let outcomes = try await fleet.send("forget", payload: { id in
            Array(try JSONEncoder().encode(JSONValue.object(["request_id": .string(id), "all": .bool(true)])))
        }, to: .node(node), timeout: .seconds(connection.timeout))
        await fleet.disconnect()
        try reportOutcomes(outcomes, target: .node(node))
    }
}

/// `fleet export-feedback`: every labelled episode of the nodes, page by page (each page acknowledged by
/// asking for the next), into the folder layout of ``FeedbackExportFolder``.
struct FleetExportFeedbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-feedback",
        abstract: "Collect the nodes' labelled episodes (embeddings; audio where kept) into a folder for training.",
        discussion: "Writes OUT/manifest.json and OUT/<node>/{episodes.jsonl,embeddings/,audio/}. Exit 1 when any node fails or stays silent; the nodes that answered are written anyway."
    )
    @OptionGroup var connection: FleetConnectionOptions
    @OptionGroup var targets: FleetTargetOptions
    @Option(help: ArgumentHelp("Output folder.", valueName: "dir")) var out: String
    @Option(help: "Largest page a node sends, in bytes.") var pageBytes = ControlService.defaultExportPageBytes

    func run() async throws {
        let fleet = try await connection.connect()
        let nodes: [String]
        switch targets.target {
        case let .node(id): nodes = [id]
        case .all: nodes = await fleet.onlineNodes()
        }
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var manifest: [String: (episodes: Int, labels: [String: Int])] = [:]
        var rows = [["NODE", "RESULT", "EPISODES", "MESSAGE"]]
        var failed = false
        for node in nodes {
            var episodes: [FeedbackExportPage.Episode] = []
            var cursor: Int64 = 0
            var failure: String?
            while true {
                let after = cursor, bytes = pageBytes
                let outcome = try await fleet.send("export_feedback", payload: { id in
                    Array(try JSONEncoder().encode(JSONValue.object(["request_id": .string(id), "after": .number(Double(after)),
                                                                     "max_bytes": .number(Double(bytes))])))
                }, to: .node(node), timeout: .seconds(connection.timeout)).first
                guard let result = outcome?.result else { failure = "no answer in time"; break }
                guard result.ok, let page = result.export else { failure = "\(result.error ?? "error"): \(result.message ?? "")"; break }
                episodes += page.episodes
                cursor = page.next
                if page.done { break }
            }
            if let failure {
                failed = true
                rows.append([node, "error", "\(episodes.count)", failure])
                continue
            }
            let labels = try FeedbackExportFolder.write(node: node, episodes: episodes, to: directory)
            manifest[node] = (episodes.count, labels)
            rows.append([node, "ok", "\(episodes.count)", labels.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")])
        }
        await fleet.disconnect()
        try FeedbackExportFolder.writeManifest(manifest, to: directory)
        if nodes.isEmpty {
            print("no node is online")
            throw ExitCode(1)
        }
        printTable(rows)
        if failed { throw ExitCode(1) }
    }
}
