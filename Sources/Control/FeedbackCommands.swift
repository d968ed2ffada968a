import Agent
import Feedback
import Foundation
import Inference
import Messaging

/// `cmd/feedback`, `cmd/forget`, `cmd/export_feedback` (docs/control.md): the caregivers' answers about
/// episodes, erasing them, and the fleet owner's export. Each change re-learns the home at once (the veto
/// reaches the gate between chunks) and re-publishes the retained feedback state for Home Assistant.
extension ControlService {
    /// Largest export page a node sends, and the default.
    public static let maxExportPageBytes = 1_000_000
    public static let defaultExportPageBytes = 200_000

    private var book: Result<FeedbackBook, FeedbackError> {
        do {
            guard let book = try agent.feedbackBook() else { return .failure(.disabled) }
            return .success(book)
        } catch {
            return .failure(.storeFailed("\(error)"))
        }
    }

    /// Labels a caregiver may give now: the running reason model's, and `not_cry`.
    private var allowedLabels: [String] { (agent.control.reasonModel ?? agent.reasonModel).labels + [FeedbackBook.notCry] }

    private func requestID(_ object: [String: JSONValue]) -> String? {
        if case let .string(id)? = object["request_id"] { id } else { nil }
    }

    func feedbackCommand(_ payload: [UInt8]) async -> CommandResult {
        let name = "feedback"
        let object: [String: JSONValue]
        switch parseObject(payload) {
        case let .failure(bad): return failure(name, nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(o): object = o
        }
        let id = requestID(object)
        for key in object.keys.sorted() where !["request_id", "episode_id", "label", "forget", "source"].contains(key) {
            return failure(name, id, error: "invalid_feedback", key: key, message: "unknown key \"\(key)\" (episode_id, label, forget)")
        }
        guard case let .string(episode)? = object["episode_id"], !episode.isEmpty else {
            return failure(name, id, error: "invalid_feedback", key: "episode_id", message: "episode_id must be an episode's id (or \"latest\")")
        }
        var forget = false
        switch object["forget"] {
        case nil, .null?: break
        case let .bool(b)?: forget = b
        case .some: return failure(name, id, error: "invalid_feedback", key: "forget", message: "forget must be true or false")
        }
        let label: String?
        switch object["label"] {
        case .null?: label = nil
        case let .string(l)?: label = l
        case nil:
            guard forget else { return failure(name, id, error: "invalid_feedback", key: "label", message: "label is required (a label, or null to withdraw)") }
            label = nil
        case .some: return failure(name, id, error: "invalid_feedback", key: "label", message: "label must be a string or null")
        }
        let book: FeedbackBook
        switch self.book {
        case let .failure(e): return failure(name, id, error: e.code, key: nil, message: e.description)
        case let .success(b): book = b
        }
        if forget { return await forgetEpisode(episode, book: book, command: name, requestID: id) }
        if let label, !allowedLabels.contains(label) {
            let e = FeedbackError.unknownLabel(label, allowed: allowedLabels)
            return failure(name, id, error: e.code, key: "label", message: e.description)
        }
        do {
            let e = try book.store.label(episode, as: label)
            agent.refreshFeedback()
            await agent.publishFeedbackState()
            var r = success(name, id, message: label.map { "episode \(e.id) labelled \($0)" } ?? "feedback on episode \(e.id) withdrawn")
            r.episodeID = e.id
            r.label = label
            return r
        } catch {
            var r = failure(name, id, error: error.code, key: error.code == "unknown_episode" ? "episode_id" : nil, message: error.description)
            r.episodeID = episode
            return r
        }
    }

    func forgetCommand(_ payload: [UInt8]) async -> CommandResult {
        let name = "forget"
        let object: [String: JSONValue]
        switch parseObject(payload) {
        case let .failure(bad): return failure(name, nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(o): object = o
        }
        let id = requestID(object)
        let book: FeedbackBook
        switch self.book {
        case let .failure(e): return failure(name, id, error: e.code, key: nil, message: e.description)
        case let .success(b): book = b
        }
        switch (object["episode_id"], object["all"]) {
        case (nil, .bool(true)?):
            do {
                let n = try book.store.forgetAll()
                agent.refreshFeedback()
                await agent.publishFeedbackState()
                var r = success(name, id, message: "erased \(n) episodes")
                r.forgotten = n
                return r
            } catch {
                return failure(name, id, error: "store_failed", key: nil, message: "\(error)")
            }
        case let (.string(episode)?, nil):
            return await forgetEpisode(episode, book: book, command: name, requestID: id)
        default:
            return failure(name, id, error: "invalid_feedback", key: "episode_id",
                           message: "give either \"episode_id\" (an episode, or \"latest\") or \"all\": true")
        }
    }

    private func forgetEpisode(_ episode: String, book: FeedbackBook, command: String, requestID: String?) async -> CommandResult {
        do {
            guard let gone = try book.store.forget(episode) else {
                let e = FeedbackError.unknownEpisode(episode)
                var r = failure(command, requestID, error: e.code, key: "episode_id", message: e.description)
                r.episodeID = episode
                return r
            }
            agent.refreshFeedback()
            await agent.publishFeedbackState()
            var r = success(command, requestID, message: "episode \(gone) erased")
            r.episodeID = gone
            r.forgotten = 1
            return r
        } catch {
            return failure(command, requestID, error: "store_failed", key: nil, message: "\(error)")
        }
    }

    func exportFeedbackCommand(_ payload: [UInt8]) -> CommandResult {
        let name = "export_feedback"
        let object: [String: JSONValue]
        switch parseObject(payload, allowEmpty: true) {
        case let .failure(bad): return failure(name, nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(o): object = o
        }
        let id = requestID(object)
        var after: Int64 = 0, maxBytes = Self.defaultExportPageBytes
        switch object["after"] {
        case nil, .null?: break
        case let .number(n)? where n >= 0 && n.rounded() == n && n < 9e15: after = Int64(n)
        case .some: return failure(name, id, error: "invalid_feedback", key: "after", message: "after must be the `next` cursor of the previous page (an integer >= 0)")
        }
        switch object["max_bytes"] {
        case nil, .null?: break
        case let .number(n)? where n >= 1000 && n <= Double(Self.maxExportPageBytes) && n.rounded() == n: maxBytes = Int(n)
        case .some: return failure(name, id, error: "invalid_feedback", key: "max_bytes", message: "max_bytes must be an integer in 1000...\(Self.maxExportPageBytes)")
        }
        let book: FeedbackBook
        switch self.book {
        case let .failure(e): return failure(name, id, error: e.code, key: nil, message: e.description)
        case let .success(b): book = b
        }
        do {
            let page = try book.store.exportPage(after: after, maxBytes: maxBytes)
            let total = try book.store.counts().labels.values.reduce(0, +)
            let next = page.last?.seq ?? after
            let done = try book.store.exportPage(after: next, maxBytes: 1).isEmpty
            var r = success(name, id, message: "\(page.count) episodes" + (done ? " (last page)" : ""))
            r.export = FeedbackExportPage(episodes: page.map { .init($0.episode, audio: $0.audio) }, next: next, done: done, total: total)
            return r
        } catch {
            return failure(name, id, error: "store_failed", key: nil, message: "\(error)")
        }
    }
}
