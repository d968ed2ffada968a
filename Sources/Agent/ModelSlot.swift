import Gate
import Inference

/// The models a node runs that a signed update (`cmd/model`) can replace, each with its own store,
/// rollback and Home Assistant `update` entity:
///
/// - `reason`: the reason CRNN;
/// - `cry`: the cry detector's own model: the cry head on a yamnet node (`gate.detector = "yamnet"`), the
///   CRNN cry detector on a crnn node;
/// - `yamnet`: the YAMNet body (yamnet nodes only).
public enum ModelSlot: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case reason, cry, yamnet

    public var description: String { rawValue }

    /// The slots of a node running `detector`.
    public static func slots(for detector: CryDetectorModel) -> [ModelSlot] {
        switch detector {
        case .crnn: [.reason, .cry]
        case .yamnet: [.reason, .cry, .yamnet]
        }
    }
}

extension CryDetectorModel {
    /// The model in one of the detector's slots (`cry`: the CRNN or the head; `yamnet`: the body), nil for
    /// `reason` or a slot this detector does not have.
    public func model(in slot: ModelSlot) -> AnyModel? {
        switch (slot, self) {
        case let (.cry, .crnn(m)): .crnn(m)
        case let (.cry, .yamnet(_, head)): .head(head)
        case let (.yamnet, .yamnet(body, _)): .yamnet(body)
        default: nil
        }
    }
}

extension AnyModel {
    /// Where the model was loaded from (a path, `embedded:<file>`, "memory", ...).
    public var source: String {
        switch self {
        case let .crnn(m): m.source
        case let .yamnet(m): m.source
        case let .head(m): m.source
        }
    }
}
