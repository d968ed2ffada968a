import CALSA
import CALSAShim
import Foundation

/// One open ALSA capture handle, configured for the closest the device offers to 16 kHz mono
/// (S16_LE preferred, FLOAT_LE accepted). `plug` devices convert for us; `hw` devices may insist on
/// 44.1/48 kHz or stereo, which the caller downmixes and resamples in software.
///
/// Blocking calls (`read`) belong on a dedicated thread, never on Swift's cooperative pool.
public final class ALSAPCM {
    public enum SampleFormat: String, Sendable { case s16 = "S16_LE", float = "FLOAT_LE" }

    /// What the device agreed to.
    public struct Negotiated: Sendable, Equatable {
        public var rate: Int
        public var channels: Int
        public var format: SampleFormat
        public var periodFrames: Int
        public var bufferFrames: Int
    }

    /// What to do after a failed read.
    public enum Recovery: Equatable {
        /// The error was an overrun or a suspend and the stream was re-prepared: keep reading.
        case recovered
        /// Nothing was wrong that waiting would not fix.
        case retry
        /// The device is gone or broken: close it and reopen later.
        case reopen(reason: String)
    }

    public let device: String
    public let negotiated: Negotiated
    private var handle: OpaquePointer?
    private var s16: [Int16] = []
    private var f32: [Float] = []

    /// Opens and configures `device` for capture.
    public init(device: String, rate: Int = 16_000, periodFrames: Int = 512) throws(CaptureError) {
        ALSAPCM.quietLibraryErrors
        self.device = device
        var pcm: OpaquePointer?
        let rc = snd_pcm_open(&pcm, device, SND_PCM_STREAM_CAPTURE, 0)
        guard rc >= 0, let pcm else { throw .cannotOpen(device: device, reason: ALSAPCM.describe(rc)) }
        do {
            negotiated = try ALSAPCM.configure(pcm, device: device, rate: rate, periodFrames: periodFrames)
        } catch {
            snd_pcm_close(pcm)
            throw error
        }
        handle = pcm
        s16 = [Int16](repeating: 0, count: negotiated.periodFrames * negotiated.channels)
        f32 = [Float](repeating: 0, count: negotiated.periodFrames * negotiated.channels)
    }

    deinit { close() }

    public func close() {
        if let handle { snd_pcm_close(handle) }
        handle = nil
    }

    /// Reads up to one period, downmixed to mono floats in [-1, 1], appended to `out`.
    /// Returns the frames read, or the negative ALSA error code.
    public func read(into out: inout [Float]) -> Int {
        guard let handle else { return -Int(EBADFD) }
        let channels = negotiated.channels, frames = negotiated.periodFrames
        let got: Int
        switch negotiated.format {
        case .s16:
            got = s16.withUnsafeMutableBytes { Int(snd_pcm_readi(handle, $0.baseAddress, snd_pcm_uframes_t(frames))) }
            if got > 0 {
                let scale = 1 / (32768 * Float(channels))
                for i in 0..<got {
                    var acc: Int32 = 0
                    for c in 0..<channels { acc += Int32(s16[i * channels + c]) }
                    out.append(Float(acc) * scale)
                }
            }
        case .float:
            got = f32.withUnsafeMutableBytes { Int(snd_pcm_readi(handle, $0.baseAddress, snd_pcm_uframes_t(frames))) }
            if got > 0 {
                let scale = 1 / Float(channels)
                for i in 0..<got {
                    var acc: Float = 0
                    for c in 0..<channels { acc += f32[i * channels + c] }
                    out.append(acc * scale)
                }
            }
        }
        return got
    }

    /// Handles a negative return of `read`: overruns (-EPIPE) and suspends (-ESTRPIPE) go through
    /// `snd_pcm_recover`, which re-prepares the stream; anything it cannot fix means reopening.
    public func recover(from code: Int) -> Recovery {
        guard let handle else { return .reopen(reason: "device closed") }
        let err = Int32(code)
        if err == -EAGAIN || err == -EINTR { return .retry }
        if err == -EPIPE || err == -ESTRPIPE {
            let rc = snd_pcm_recover(handle, err, 1)
            return rc >= 0 ? .recovered : .reopen(reason: ALSAPCM.describe(rc))
        }
        return .reopen(reason: ALSAPCM.describe(err))
    }

    /// The stream's ALSA state name (e.g. "RUNNING", "XRUN", "PREPARED").
    public var stateName: String {
        guard let handle else { return "CLOSED" }
        return String(cString: snd_pcm_state_name(snd_pcm_state(handle)))
    }

    static func describe(_ code: Int32) -> String { String(cString: snd_strerror(code)) }

    /// ALSA prints its own errors to stderr by default; we report them ourselves, with the device name.
    static let quietLibraryErrors: Void = deepinfant_alsa_silence_errors()

    private static func configure(_ pcm: OpaquePointer, device: String, rate: Int, periodFrames: Int) throws(CaptureError) -> Negotiated {
        var hw: OpaquePointer?
        guard snd_pcm_hw_params_malloc(&hw) >= 0, let hw else { throw .unsupportedDevice(device: device, reason: "out of memory") }
        defer { snd_pcm_hw_params_free(hw) }
        func check(_ rc: Int32, _ what: String) throws(CaptureError) {
            if rc < 0 { throw .unsupportedDevice(device: device, reason: "\(what): \(describe(rc))") }
        }
        try check(snd_pcm_hw_params_any(pcm, hw), "no configuration available")
        try check(snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED), "interleaved access")
        let format: SampleFormat
        if snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE) >= 0 {
            format = .s16
        } else if snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_FLOAT_LE) >= 0 {
            format = .float
        } else {
            throw .unsupportedDevice(device: device, reason: "supports neither S16_LE nor FLOAT_LE")
        }
        var channels: UInt32 = 1
        try check(snd_pcm_hw_params_set_channels_near(pcm, hw, &channels), "channels")
        var actualRate = UInt32(rate)
        var dir: Int32 = 0
        try check(snd_pcm_hw_params_set_rate_near(pcm, hw, &actualRate, &dir), "rate")
        // The period is asked for in frames at `rate`: keep its duration when the device grants another rate.
        var period = snd_pcm_uframes_t(max(16, periodFrames * Int(actualRate) / max(rate, 1)))
        try check(snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, &dir), "period size")
        // At least half a second of device buffer, so a short stall of the capture thread is not an overrun.
        var buffer = max(period * 8, snd_pcm_uframes_t(actualRate / 2))
        try check(snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer), "buffer size")
        try check(snd_pcm_hw_params(pcm, hw), "applying hardware parameters")
        try check(snd_pcm_prepare(pcm), "prepare")
        return Negotiated(rate: Int(actualRate), channels: Int(channels), format: format,
                          periodFrames: Int(period), bufferFrames: Int(buffer))
    }
}
