import Capture
import Foundation
import Testing

/// The real ALSA path: libasound opening PCMs from a test-owned config, `snd_pcm_readi` on the capture
/// thread, recovery and reopening. Serialized because they share one ALSA configuration.
@Suite(.serialized)
struct ALSACaptureTests {
    init() { _ = ALSATestDevices.directory }

    /// Collects audio until `count` samples arrived (or the stream ends), then stops the source.
    static func capture(_ source: ALSACaptureSource, samples count: Int, timeout: Double = 20) async -> ([Float], [CaptureEvent]) {
        var audio: [Float] = [], others: [CaptureEvent] = []
        let deadline = Date().addingTimeInterval(timeout)
        var expectedIndex: Int64 = 0
        for await event in source.events() {
            if case let .audio(chunk) = event {
                #expect(chunk.startIndex == expectedIndex)
                expectedIndex += Int64(chunk.samples.count)
                audio += chunk.samples
            } else {
                others.append(event)
            }
            if audio.count >= count || Date() > deadline { break }
        }
        return (audio, others)
    }

    @Test("captured samples equal the recording, sample for sample")
    func samplesEqualRecording() async throws {
        let recording = try AudioFile.read(path: Fixtures.path("cry_ios_tired.flac"))
        try ALSATestDevices.writeRaw(recording, to: "cry.raw")
        let source = ALSACaptureSource(configuration: .init(device: "cryfile", chunkSize: 1600))
        let (audio, events) = await Self.capture(source, samples: recording.count)
        try #require(audio.count >= recording.count)
        #expect(Array(audio.prefix(recording.count)) == recording)
        #expect(events.first == .opened(device: "cryfile", rate: 16_000, channels: 1, format: "S16_LE"))
        #expect(source.counters.snapshot.opens == 1)
    }

    @Test("an unknown device gives a clear error naming it")
    func unknownDevice() async throws {
        #expect(throws: CaptureError.cannotOpen(device: "nosuchpcm", reason: "No such file or directory")) {
            try ALSACaptureSource.probe(device: "nosuchpcm")
        }
        let error = CaptureError.cannotOpen(device: "nosuchpcm", reason: "No such file or directory")
        #expect(error.description == "cannot open ALSA capture device 'nosuchpcm': No such file or directory")
        // The live source retries with backoff, reporting each failure, and gives up only when told to.
        let source = ALSACaptureSource(configuration: .init(device: "nosuchpcm", backoff: Backoff(initial: 0.01, cap: 0.02), maxOpenAttempts: 3))
        let (audio, events) = await Self.capture(source, samples: 1)
        #expect(audio.isEmpty)
        #expect(events.count == 3)
        #expect(events.allSatisfy { if case let .unavailable(device, reason, _) = $0 { device == "nosuchpcm" && reason.contains("nosuchpcm") } else { false } })
        #expect(source.counters.snapshot.openFailures == 3)
    }

    @Test("an overrun (-EPIPE) is recovered with snd_pcm_recover and reading goes on")
    func overrunRecovery() throws {
        let recording = try AudioFile.read(path: Fixtures.path("cry_ios_tired.flac"))
        try ALSATestDevices.writeRaw(recording, to: "cry.raw")
        let pcm = try ALSAPCM(device: "cryfile", periodFrames: 1000)
        var got: [Float] = []
        #expect(pcm.read(into: &got) == pcm.negotiated.periodFrames)
        #expect(pcm.stateName == "RUNNING")
        #expect(pcm.recover(from: -Int(EPIPE)) == .recovered)
        #expect(pcm.stateName == "PREPARED")
        #expect(pcm.read(into: &got) == pcm.negotiated.periodFrames)
        #expect(pcm.stateName == "RUNNING")
        // The stream continues where it was: no sample lost or repeated across the recovery.
        #expect(got == Array(recording.prefix(got.count)))
        #expect(pcm.recover(from: -Int(EAGAIN)) == .retry)
        #expect(pcm.recover(from: -Int(ENODEV)) == .reopen(reason: "No such device"))
        pcm.close()
        #expect(pcm.recover(from: -Int(EPIPE)) == .reopen(reason: "device closed"))
    }

    @Test("a device that is missing at start is opened once it appears (backoff, counted)")
    func deviceAppearsLater() async throws {
        try? FileManager.default.removeItem(atPath: ALSATestDevices.path("late.raw"))
        let source = ALSACaptureSource(configuration: .init(device: "late", backoff: Backoff(initial: 0.05, cap: 0.2)))
        let tone = (0..<16_000).map { Float(0.25 * sin(Double($0) * 0.3)) }
        Task {
            try await Task.sleep(for: .milliseconds(400))
            try ALSATestDevices.writeRaw(tone, to: "late.raw")
        }
        let (audio, events) = await Self.capture(source, samples: 8000)
        #expect(audio.count >= 8000)
        let failures = events.filter { if case .unavailable = $0 { true } else { false } }.count
        #expect(failures >= 2)
        #expect(events.contains(.opened(device: "late", rate: 16_000, channels: 1, format: "S16_LE")))
        #expect(source.counters.snapshot.openFailures == failures)
        #expect(Array(audio.prefix(8000)) == tone.map { Float(Int16(($0 * 32768).rounded())) / 32768 }.prefix(8000).map { $0 })
    }

    @Test("a device running at 48 kHz is resampled to 16 kHz in software")
    func resamplesDeviceRate() async throws {
        let tone = (0..<48_000).map { Float(0.5 * sin(2 * Double.pi * 1000 * Double($0) / 48_000)) }
        try ALSATestDevices.writeRaw(tone, to: "tone48k.raw")
        let source = ALSACaptureSource(configuration: .init(device: "tone48k", preferredRate: 48_000))
        let (audio, events) = await Self.capture(source, samples: 15_000)
        #expect(events.first == .opened(device: "tone48k", rate: 48_000, channels: 1, format: "S16_LE"))
        let middle = Array(audio[2000..<14_000])
        #expect(abs(toneLevel(middle, frequency: 1000) - (-12.04)) < 0.5)  // amplitude 0.5: (0.5/2)² = -12.04 dB
        #expect(toneLevel(middle, frequency: 3000) < -60)
    }

    @Test("real-time pacing: a non-blocking file PCM is delivered no faster than the clock")
    func realTimePacing() async throws {
        let recording = try AudioFile.read(path: Fixtures.path("cry_ios_tired.flac"))
        try ALSATestDevices.writeRaw(recording, to: "cry.raw")
        let source = ALSACaptureSource(configuration: .init(device: "cryfile", realTime: true))
        let start = Date()
        let (audio, _) = await Self.capture(source, samples: 8000)
        #expect(audio.count >= 8000)
        #expect(Date().timeIntervalSince(start) >= 0.45)
    }
}
