import Foundation
import Messaging

/// The episode a node is in the middle of, kept on disk so that a node that stops mid-episode (power cut,
/// SIGKILL, out of memory) ends it when it starts again: a consumer waiting for `end` (an automation that
/// keeps a light on while the baby cries) is not left hanging.
///
/// Each event is saved here *before* it goes to the outbox. On start-up the saved event is published again
/// (an exact duplicate if it had reached the outbox, the missing event if it had not), followed by an
/// `end` marked `interrupted` unless the saved event was already the end. So a consumer that drops repeats
/// by (`episode_id`, `seq`) sees every episode complete and gap-free. When a save fails (a full disk) the
/// mark is removed rather than left stale, so the end it would produce can never reuse a seq.
struct OpenEpisodeMark {
    let path: String

    init(stateDir: String) { path = stateDir + "/open-episode.json" }

    func save(_ event: CryEventPayload) throws {
        try Data(try PayloadJSON.encode(event)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    func clear() { try? FileManager.default.removeItem(atPath: path) }

    /// The saved event, if any (nil for an unreadable file, which is then removed: it cannot be completed).
    func load() -> CryEventPayload? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let event = try? PayloadJSON.decode(CryEventPayload.self, from: Array(data)) else { clear(); return nil }
        return event
    }

    /// What to publish at start-up for a saved event: the event again, then its interrupted end.
    static func completion(of saved: CryEventPayload) -> [CryEventPayload] {
        guard saved.type != .end else { return [saved] }
        var end = saved
        end.type = .end
        end.seq = saved.seq + 1
        end.endedAt = saved.timestamp
        end.durationS = (max(0, saved.timestamp.timeIntervalSince(saved.startedAt)) * 10).rounded() / 10
        end.interrupted = true
        return [saved, end]
    }
}
