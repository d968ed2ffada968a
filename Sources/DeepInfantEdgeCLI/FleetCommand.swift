import Agent
import ArgumentParser
import Control
import Foundation
import JSONLimits
import Inference
import Messaging

/// `fleet`: a controller for many nodes over the same broker (list, configure, update, roll back).
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Control nodes over MQTT: list, config, push-model, rollback.",
        discussion: """
        Each command waits for every targeted node's result (or --timeout) and prints a table; the exit
        status is 1 when any node reports an error or does not answer in time. --all targets the nodes whose
        retained status is online.
        """,
        subcommands: [FleetListCommand.self, FleetConfigCommand.self, FleetPushModelCommand.self, FleetRollbackCommand.self,
                      FleetFeedbackCommand.self, FleetExportFeedbackCommand.self, FleetForgetAllCommand.self]
    )
}

struct FleetConnectionOptions: ParsableArguments {
    @OptionGroup var brokerOptions: BrokerOptions
    @Option(help: "Topic prefix of the nodes.") var prefix = "deepinfant"
    @Option(help: "Seconds to wait for the nodes' answers.") var timeout: Double = 30

    func connect() async throws -> FleetController {
        let fleet = try FleetController(settings: try brokerOptions.settings(clientIDPrefix: "deepinfant-fleet"), prefix: prefix)
        do { try await fleet.connect(timeout: .seconds(min(timeout, 10))) } catch {
            throw CLIError(message: "cannot reach \(brokerOptions.broker): \(error)")
        }
        return fleet
    }
}

struct FleetTargetOptions: ParsableArguments {
    @Option(help: "Target one node (its id).") var node: String?
    @Flag(help: "Target every online node.") var all = false

    func validate() throws {
        guard (node != nil) != all else { throw ValidationError("give exactly one of --node ID or --all") }
    }

    var target: FleetController.Target { node.map { .node($0) } ?? .all }
}

/// Prints the outcomes and fails when any node failed or stayed silent.
func reportOutcomes(_ outcomes: [FleetController.Outcome], target: FleetController.Target) throws {
    if outcomes.isEmpty {
        print("no node is online")
        throw ExitCode(1)
    }
    var rows = [["NODE", "RESULT", "ERROR", "MESSAGE"]]
    for o in outcomes {
        if let r = o.result {
            rows.append([o.node, r.ok ? "ok" : "error", r.error ?? (r.restartRequired == true ? "(restart required)" : ""), r.message ?? ""])
        } else {
            rows.append([o.node, "timeout", "", "no answer in time"])
        }
    }
    printTable(rows)
    if !outcomes.allSatisfy(\.ok) { throw ExitCode(1) }
}

func printTable(_ rows: [[String]]) {
    let widths = (0..<(rows.first?.count ?? 0)).map { c in rows.map { $0[c].count }.max() ?? 0 }
    for row in rows {
        print(zip(row, widths).enumerated().map { i, cell in
            i == row.count - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
        }.joined(separator: "  "))
    }
}

struct FleetListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Nodes from their retained status/info/state.")
    @OptionGroup var connection: FleetConnectionOptions
    @Option(help: "Seconds to collect retained messages.") var settle: Double = 1

    func run() async throws {
        let fleet = try await connection.connect()
        let nodes = await fleet.list(settle: .seconds(settle))
        await fleet.disconnect()
        var rows = [["NODE", "STATUS", "SOFTWARE", "MODEL", "UPTIME", "CRY"]]
        for n in nodes {
            let model = n.info.map { info in
                "\(info.model.name) \(info.model.version)"
                    + (info.model.latestVersion.map { $0 != info.model.version ? " (latest \($0))" : "" } ?? "")
                    + (info.models ?? []).filter { $0.slot != "reason" }.map { m in
                        "; \(m.slot) \(m.name) \(m.version)" + (m.latestVersion.map { $0 != m.version ? " (latest \($0))" : "" } ?? "")
                    }.joined()
            } ?? "-"
            let cry: String
            if let s = n.state {
                cry = s.crying ? "crying (\(s.reason ?? "?")) since \(PayloadJSON.formatTimestamp(s.since))"
                    : "quiet since \(PayloadJSON.formatTimestamp(s.since))"
            } else {
                cry = "-"
            }
            rows.append([n.id, n.online.map { $0 ? "online" : "offline" } ?? "?", n.info?.softwareVersion ?? "-", model,
                         n.info.map { "\(Int($0.uptimeS)) s" } ?? "-", cry])
        }
        printTable(rows)
    }
}

struct FleetConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Send a JSON merge patch of the configuration, e.g. '{\"gate\": {\"cry_threshold\": 0.6}}'; '{}' shows the config."
    )
    @OptionGroup var connection: FleetConnectionOptions
    @OptionGroup var targets: FleetTargetOptions
    @Argument(help: "The patch (JSON object, TOML-shaped keys).") var patch: String

    func run() async throws {
        guard !JSONNesting.tooDeep(patch.utf8), case var .object(members)? = try? JSONDecoder().decode(JSONValue.self, from: Data(patch.utf8)) else {
            throw CLIError(message: "the patch must be a JSON object")
        }
        let fleet = try await connection.connect()
        let outcomes = try await fleet.send("config", payload: { id in
            members["request_id"] = .string(id)
            return Array(try JSONEncoder().encode(JSONValue.object(members)))
        }, to: targets.target, timeout: .seconds(connection.timeout))
        await fleet.disconnect()
        if members.count == 1, let r = outcomes.first?.result, let config = r.config {
            print(config.jsonText)
        }
        try reportOutcomes(outcomes, target: targets.target)
    }
}

struct FleetPushModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push-model",
        abstract: "Sign a model and send it to nodes (cmd/model); they verify, self-test, store and swap it.",
        discussion: "Any model kind: a reason model, a cry head or CRNN cry detector (the cry slot), a YAMNet body (the yamnet slot); the node picks the slot from the file and refuses a model that does not fit what it runs."
    )
    @OptionGroup var connection: FleetConnectionOptions
    @OptionGroup var targets: FleetTargetOptions
    @Argument(help: ArgumentHelp("Model file (.safetensors), or an envelope written by model sign.", valueName: "model")) var model: String
    @Option(help: ArgumentHelp("Private key file (needed unless MODEL is already an envelope).", valueName: "file")) var key: String?
    @Flag(help: "Allow a version lower than the one running.") var force = false

    func run() async throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: model)))
        var envelope: ModelEnvelope
        if let key {
            // Any kind: a reason model, a cry head or CRNN cry detector, a YAMNet body (the node picks the slot).
            let any: AnyModel
            do { any = try AnyModel.load(bytes: bytes, source: model) } catch { throw CLIError(message: "refusing to push: \(error)") }
            envelope = try ModelEnvelope.sign(modelBytes: bytes, name: any.name, version: any.version,
                                              key: try SigningKeys.loadPrivate(path: key))
        } else {
            do { envelope = try ModelEnvelope.decode(bytes) } catch {
                throw CLIError(message: "\(model) is not an envelope (\(error)); give --key to sign a model file")
            }
        }
        if force { envelope.force = true }
        let fleet = try await connection.connect()
        let outcomes = try await fleet.send("model", payload: { id in
            var e = envelope
            e.requestID = id
            return try e.encoded()
        }, to: targets.target, timeout: .seconds(connection.timeout))
        await fleet.disconnect()
        try reportOutcomes(outcomes, target: targets.target)
    }
}

struct FleetRollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollback", abstract: "Return nodes to the previous model of a slot (default: the reason model).")
    @OptionGroup var connection: FleetConnectionOptions
    @OptionGroup var targets: FleetTargetOptions
    @Option(help: ArgumentHelp("Model slot: reason, cry (cry head or CRNN cry detector) or yamnet (the body).", valueName: "slot"))
    var slot = "reason"

    func validate() throws {
        guard ModelSlot(rawValue: slot) != nil else { throw ValidationError("--slot must be one of reason, cry, yamnet") }
    }

    func run() async throws {
        let fleet = try await connection.connect()
        let slot = self.slot
        let outcomes = try await fleet.send("rollback", payload: { id in
            Array(try JSONEncoder().encode(["request_id": id, "slot": slot]))
        }, to: targets.target, timeout: .seconds(connection.timeout))
        await fleet.disconnect()
        try reportOutcomes(outcomes, target: targets.target)
    }
}
