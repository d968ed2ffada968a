import Foundation
import Gate
import Messaging

/// Maps gate events to the MQTT contract's payloads: numbers the events of each episode (seq 0 = start),
/// keeps the retained `state` in step, and attaches the current sound level and model version.
struct EpisodeReporter {
    var modelVersion: String
    private var seq: [UUID: Int] = [:]
    private var started: [UUID: Date] = [:]

    init(modelVersion: String) { self.modelVersion = modelVersion }

    enum Output {
        case event(CryEventPayload, StatePayload?)
        case level(Double, Date)
    }

    mutating func map(_ event: GateEvent, levelDBFS: Double) -> Output {
        switch event {
        case let .cryStarted(id, at, _, _, estimate, detected):
            seq[id] = 0
            started[id] = at
            let e = payload(.start, id, at: detected, started: at, estimate, level: levelDBFS)
            return .event(e, StatePayload(crying: true, reason: estimate.reason, confidence: estimate.confidence, since: at, episodeID: id.uuidString.lowercased()))
        case let .cryUpdated(id, at, _, estimate):
            seq[id, default: 0] += 1
            let e = payload(.update, id, at: at, started: started[id] ?? at, estimate, level: levelDBFS)
            return .event(e, StatePayload(crying: true, reason: estimate.reason, confidence: estimate.confidence, since: started[id] ?? at, episodeID: id.uuidString.lowercased()))
        case let .cryEnded(id, at, _, duration, _, _, estimate):
            seq[id, default: 0] += 1
            let begin = started[id] ?? at
            var e = payload(.end, id, at: at, started: begin, estimate, level: levelDBFS)
            e.endedAt = begin.addingTimeInterval(duration)
            e.durationS = (duration * 10).rounded() / 10
            seq[id] = nil
            started[id] = nil
            return .event(e, StatePayload(crying: false, reason: estimate.reason, confidence: estimate.confidence, since: at))
        case let .level(dbfs, at, _):
            return .level(dbfs, at)
        }
    }

    private func payload(_ kind: CryEventPayload.Kind, _ id: UUID, at: Date, started: Date, _ estimate: ReasonEstimate, level: Double) -> CryEventPayload {
        CryEventPayload(type: kind, episodeID: id.uuidString.lowercased(), seq: seq[id] ?? 0, timestamp: at, startedAt: started,
                        reason: estimate.reason, confidence: estimate.confidence, probabilities: estimate.probabilities,
                        levelDBFS: level, modelVersion: modelVersion, eventType: estimate.reason)
    }
}
