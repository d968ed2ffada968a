import Foundation
import Gate
import Inference

/// The running pipeline as the control stage sees it: live changes to the gate and the reason model.
///
/// The gate lives behind a lock that the pipeline holds while it processes one chunk, so a change lands
/// between chunks — never inside an analysis window — and no window is lost or analysed twice. Events a
/// change causes (a model swap closes the open episode) are queued for the pipeline to publish in order.
public final class AgentControl: @unchecked Sendable {
    fileprivate let lock = NSLock()
    fileprivate var gate: CryGate?
    fileprivate var queued: [GateEvent] = []
    private var settingsChanged = false
    fileprivate var modelChanged = false

    public init() {}

    /// Settings accepted before the pipeline ran (a node is `online` a moment before its audio starts, and a
    /// fleet command in that moment must not be refused): applied when the gate is attached.
    private var pendingSettings: GateSettings?

    /// Attached by `Agent.run()` once the gate exists; settings accepted before are applied now.
    func attach(_ gate: CryGate) {
        lock.withLock {
            self.gate = gate
            if let pending = pendingSettings {
                // Validated when accepted; the gate validates again and keeps its own on failure.
                try? gate.update(settings: pending)
                pendingSettings = nil
                settingsChanged = true
            }
        }
    }

    /// Runs `body` on the gate with the lock held (the pipeline, per chunk).
    func withGate<T>(_ body: (CryGate) -> T) -> T? { lock.withLock { gate.map(body) } }

    /// The same, for tests that check what the running gate holds.
    public func withGateForTesting<T>(_ body: (CryGate) -> T) -> T? { withGate(body) }

    /// Events caused by control changes, and whether info must be re-published.
    func drain() -> (events: [GateEvent], modelChanged: Bool, settingsChanged: Bool) {
        lock.withLock {
            defer { queued = []; modelChanged = false; settingsChanged = false }
            return (queued, modelChanged, settingsChanged)
        }
    }

    public var isRunning: Bool { lock.withLock { gate != nil } }

    /// The gate settings in force (or accepted for the pipeline's start).
    public var gateSettings: GateSettings? { lock.withLock { gate?.settings ?? pendingSettings } }

    /// The reason model in force.
    public var reasonModel: ModelBundle? { lock.withLock { gate?.reasonModel } }

    /// Applies validated settings between chunks, or — before the pipeline runs — at its start. Throws (and
    /// changes nothing) when they are invalid.
    public func applyGateSettings(_ settings: GateSettings) throws {
        try lock.withLock {
            guard let gate else {
                try settings.validate()
                pendingSettings = settings
                return
            }
            try gate.update(settings: settings)
            settingsChanged = true
        }
    }

    /// Swaps the reason model between chunks; returns the model it replaced (keep it for rollback).
    @discardableResult
    public func swapReasonModel(_ model: ModelBundle) throws -> ModelBundle {
        try lock.withLock {
            guard let gate else { throw AgentControlError.notRunning }
            let previous = gate.reasonModel
            queued += try gate.swapReasonModel(model)
            modelChanged = true
            return previous
        }
    }
}

extension AgentControl {
    /// The cry detector in force.
    public var cryDetector: CryDetectorModel? { lock.withLock { gate?.detectorModel } }

    /// Swaps the cry detector's models between chunks; returns what it replaced (keep it for rollback).
    @discardableResult
    public func swapCryDetector(_ model: CryDetectorModel) throws -> CryDetectorModel {
        try lock.withLock {
            guard let gate else { throw AgentControlError.notRunning }
            let previous = gate.detectorModel
            queued += try gate.swapCryDetector(model)
            modelChanged = true
            return previous
        }
    }
}

extension AgentControl {
    /// Hands the gate what the home taught (between chunks); nil removes the veto.
    public func setVeto(_ veto: (any CryVeto)?) {
        lock.withLock { gate?.veto = veto }
    }
}

public enum AgentControlError: Error, Equatable, CustomStringConvertible {
    case notRunning
    public var description: String { "the audio pipeline is not running" }
}
