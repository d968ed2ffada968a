import Foundation

/// Stage 1: a frame-level energy detector against an adaptive noise floor. It costs a few multiply-adds
/// per sample, so an idle node spends almost nothing; only when a frame rises above the background does
/// the cry detector (stage 2) run.
///
/// The floor is a minimum statistic: the quietest 32 ms frame of the last `floorWindowSeconds`
/// (tracked in half-second blocks). A steady fan, hum or vacuum cleaner becomes background within that
/// window, while a cry — which pauses for breath — keeps the floor at the room's level and stays above
/// it. Until the window has filled, `initialFloorDBFS` stands in for the history, so a recording that
/// starts with a cry is still active.
public struct ActivityDetector: Sendable {
    public static let frameSize = 512  // 32 ms at 16 kHz
    static let framesPerBlock = 16     // ~0.5 s

    public var marginDB: Double
    public var minDBFS: Double
    public let floorWindowSeconds: Double
    public let initialFloorDBFS: Double
    /// Stream time (s) of the end of the last active frame, or -inf.
    public private(set) var lastActive: Double = -.infinity
    /// Start of the current run of activity (frames active with gaps under a second), or nil when quiet:
    /// the gate aligns its first analysis windows to it, so a new cry is not diluted by the silence before.
    public private(set) var activeSince: Double?
    private var blockMinima: [Double] = []
    private var currentBlockMin = Double.infinity
    private var framesInBlock = 0
    private var partialEnergy: Double = 0
    private var partialCount = 0

    public init(marginDB: Double = 8, minDBFS: Double = -55, floorWindowSeconds: Double = 5, initialFloorDBFS: Double = -70) {
        self.marginDB = marginDB
        self.minDBFS = minDBFS
        self.floorWindowSeconds = floorWindowSeconds
        self.initialFloorDBFS = initialFloorDBFS
    }

    private var blocksInWindow: Int {
        max(1, Int((floorWindowSeconds * 16_000 / Double(Self.frameSize * Self.framesPerBlock)).rounded()))
    }

    /// The current background estimate (dBFS), never below -90.
    public var floorDBFS: Double {
        var floor = min(blockMinima.min() ?? .infinity, currentBlockMin)
        if blockMinima.count < blocksInWindow { floor = min(floor, initialFloorDBFS) }
        return max(-90, floor)
    }

    /// Feeds samples; returns how many frames were active among those completed.
    @discardableResult
    public mutating func process(_ samples: UnsafeBufferPointer<Float>, startTime: Double) -> Int {
        var active = 0
        for (i, x) in samples.enumerated() {
            partialEnergy += Double(x * x)
            partialCount += 1
            guard partialCount == Self.frameSize else { continue }
            let level = SoundLevel.dbfs(meanSquare: partialEnergy / Double(Self.frameSize))
            let frameEnd = startTime + Double(i + 1) / 16_000
            if level > max(floorDBFS + marginDB, minDBFS) {
                active += 1
                if activeSince == nil || frameEnd - lastActive > 1 { activeSince = frameEnd - Double(Self.frameSize) / 16_000 }
                lastActive = frameEnd
            } else if frameEnd - lastActive > 1 {
                activeSince = nil
            }
            currentBlockMin = min(currentBlockMin, level)
            framesInBlock += 1
            if framesInBlock == Self.framesPerBlock {
                blockMinima.append(currentBlockMin)
                if blockMinima.count > blocksInWindow { blockMinima.removeFirst() }
                currentBlockMin = .infinity
                framesInBlock = 0
            }
            partialEnergy = 0
            partialCount = 0
        }
        return active
    }
}

public enum SoundLevel {
    /// dBFS of a mean square (full-scale sine = -3 dBFS; digital silence clamps to -120).
    public static func dbfs(meanSquare: Double) -> Double { max(-120, 10 * log10(max(meanSquare, 1e-12))) }
}
