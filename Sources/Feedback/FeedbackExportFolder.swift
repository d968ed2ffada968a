import Foundation

/// The folder `fleet export-feedback` writes and `training/` (and `model train-head`) read:
///
///     DIR/manifest.json                          {"exported_at", "nodes": {id: {"episodes", "labels"}}}
///     DIR/<node>/episodes.jsonl                  one labelled episode per line (docs/control.md)
///     DIR/<node>/embeddings/<episode>.npy        float32 [patches, 1024] raw YAMNet embeddings
///     DIR/<node>/audio/<episode>.wav             16 kHz mono 16-bit, only where the node kept audio
public enum FeedbackExportFolder {
    /// One episode's line in `episodes.jsonl`.
    public struct Line: Codable, Sendable, Equatable {
        public var episodeID: String
        public var nodeID: String
        public var label: String
        public var labelledAt: Date?
        public var startedAt: Date
        public var endedAt: Date?
        public var durationS: Double?
        public var cryConfidence: Double
        public var reason: String
        public var probabilities: [String: Double]
        public var models: [String: String]
        public var patches: Int
        public var embeddingDim: Int
        public var embeddings: String?
        public var audio: String?

        enum CodingKeys: String, CodingKey {
            case label, reason, probabilities, models, patches, embeddings, audio
            case episodeID = "episode_id", nodeID = "node_id", labelledAt = "labelled_at", startedAt = "started_at"
            case endedAt = "ended_at", durationS = "duration_s", cryConfidence = "cry_confidence", embeddingDim = "embedding_dim"
        }
    }

    /// Writes one node's episodes (replacing what an earlier export wrote for it); returns its label counts.
    @discardableResult
    public static func write(node: String, episodes: [FeedbackExportPage.Episode], to directory: URL) throws -> [String: Int] {
        let fm = FileManager.default
        let nodeDir = directory.appendingPathComponent(node)
        try? fm.removeItem(at: nodeDir)
        try fm.createDirectory(at: nodeDir.appendingPathComponent("embeddings"), withIntermediateDirectories: true)
        var lines = Data()
        var labels: [String: Int] = [:]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        for e in episodes {
            labels[e.label, default: 0] += 1
            var embeddingPath: String?, audioPath: String?
            let embeddings = e.embeddings
            if !embeddings.isEmpty, e.embeddingDim > 0 {
                embeddingPath = "embeddings/\(e.episodeID).npy"
                try npy(embeddings, rows: embeddings.count / e.embeddingDim, columns: e.embeddingDim)
                    .write(to: nodeDir.appendingPathComponent(embeddingPath!))
            }
            if let audio = e.audio {
                try fm.createDirectory(at: nodeDir.appendingPathComponent("audio"), withIntermediateDirectories: true)
                audioPath = "audio/\(e.episodeID).wav"
                try wav(audio).write(to: nodeDir.appendingPathComponent(audioPath!))
            }
            let line = Line(episodeID: e.episodeID, nodeID: node, label: e.label, labelledAt: e.labelledAt, startedAt: e.startedAt,
                            endedAt: e.endedAt, durationS: e.durationS, cryConfidence: e.cryConfidence, reason: e.reason,
                            probabilities: e.probabilities, models: e.models, patches: e.patches, embeddingDim: e.embeddingDim,
                            embeddings: embeddingPath, audio: audioPath)
            lines.append(try encoder.encode(line))
            lines.append(0x0A)
        }
        try lines.write(to: nodeDir.appendingPathComponent("episodes.jsonl"))
        return labels
    }

    /// Writes `manifest.json` for the nodes exported.
    public static func writeManifest(_ nodes: [String: (episodes: Int, labels: [String: Int])], to directory: URL, at date: Date = Date()) throws {
        var entries: [String: Any] = [:]
        for (id, n) in nodes { entries[id] = ["episodes": n.episodes, "labels": n.labels] }
        let manifest: [String: Any] = ["exported_at": ISO8601DateFormatter().string(from: date), "nodes": entries]
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .prettyPrinted])
            .write(to: directory.appendingPathComponent("manifest.json"))
    }

    /// Reads every node's labelled episodes back with their embeddings (row-major `[patches, dim]`).
    public static func read(_ directory: URL) throws -> [(line: Line, embeddings: [Float])] {
        let fm = FileManager.default
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var out: [(Line, [Float])] = []
        for node in try fm.contentsOfDirectory(atPath: directory.path).sorted() {
            let file = directory.appendingPathComponent(node).appendingPathComponent("episodes.jsonl")
            guard let data = fm.contents(atPath: file.path) else { continue }
            for raw in data.split(separator: 0x0A) where !raw.isEmpty {
                let line = try decoder.decode(Line.self, from: Data(raw))
                var embeddings: [Float] = []
                if let path = line.embeddings {
                    let bytes = try Data(contentsOf: directory.appendingPathComponent(node).appendingPathComponent(path))
                    embeddings = try readNPY(bytes)
                }
                out.append((line, embeddings))
            }
        }
        return out
    }

    /// A little-endian float32 `.npy` of shape `[rows, columns]`.
    static func npy(_ values: [Float], rows: Int, columns: Int) -> Data {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The float32 payload of an `.npy` this module wrote (header checked for `<f4`, C order).
    static func readNPY(_ data: Data) throws -> [Float] {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else { throw ExportFolderError("not an .npy file") }
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        guard bytes.count >= 10 + headerLength else { throw ExportFolderError("truncated .npy header") }
        let header = String(decoding: bytes[10..<10 + headerLength], as: UTF8.self)
        guard header.contains("'<f4'"), header.contains("'fortran_order': False") else { throw ExportFolderError("only float32 C-order .npy is read") }
        return FeedbackStore.floats(Array(bytes[(10 + headerLength)...]))
    }

    /// A 16 kHz mono 16-bit PCM WAV.
    static func wav(_ samples: [Int16]) -> Data {
        func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        let bytes = UInt32(samples.count * 2)
        var data = Data(Array("RIFF".utf8) + le32(36 + bytes) + Array("WAVEfmt ".utf8) + le32(16) + le16(1) + le16(1)
                        + le32(16_000) + le32(32_000) + le16(2) + le16(16) + Array("data".utf8) + le32(bytes))
        samples.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }
}

public struct ExportFolderError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
