import Foundation

/// The audio of episodes, kept only when the owner opted in (`feedback.keep_audio`): the last few
/// seconds always (an episode is confirmed a second or two after its onset), and from 1 s before each
/// onset until the episode ends or `maxSamples` — as 16-bit PCM at 16 kHz, the form the store keeps.
struct EpisodeAudioRecorder {
    static let lookbackSamples = 10 * 16_000
    static let preRollSamples = 16_000
    let maxSamples: Int
    private var recent: [Int16] = []
    private var recentStart: Int64 = 0
    private var open: [String: [Int16]] = [:]

    init(maxSeconds: Double) { maxSamples = max(16_000, Int(maxSeconds * 16_000)) }

    mutating func append(_ samples: [Float], startIndex: Int64) {
        let pcm = samples.map { Int16(max(-1, min(1, $0)) * 32_767) }
        if recent.isEmpty { recentStart = startIndex }
        recent += pcm
        if recent.count > 2 * Self.lookbackSamples {
            let drop = recent.count - Self.lookbackSamples
            recent.removeFirst(drop)
            recentStart += Int64(drop)
        }
        for (id, audio) in open where audio.count < maxSamples {
            open[id] = audio + pcm.prefix(maxSamples - audio.count)
        }
    }

    /// An episode with its onset at stream time `onset` (s) was confirmed: its audio so far is kept.
    mutating func begin(_ id: String, onset: Double) {
        let from = max(recentStart, Int64(onset * 16_000) - Int64(Self.preRollSamples))
        let offset = Int(max(0, from - recentStart))
        open[id] = Array(recent[min(offset, recent.count)...].prefix(maxSamples))
    }

    /// The episode ended: its audio, and it is no longer recorded.
    mutating func finish(_ id: String) -> [Int16]? { open.removeValue(forKey: id) }
}
