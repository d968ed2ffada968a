import Capture
import Foundation
import Testing

struct FileSourceTests {
    @Test("44.1 kHz stereo is averaged to mono and resampled band-limited to 16 kHz")
    func resamplesAndDownmixes() throws {
        let (native, info) = try AudioFile.readNative(path: Fixtures.path("tones_44k1_stereo.wav"))
        #expect(info.sampleRate == 44_100 && info.channels == 2)
        #expect(native.count == 22_050)
        let y = try AudioFile.read(path: Fixtures.path("tones_44k1_stereo.wav"))
        #expect(abs(y.count - 8000) <= 2)
        let middle = Array(y[1000..<7000])
        #expect(abs(toneLevel(middle, frequency: 1000) - (-12.04)) < 0.5)  // amplitude 0.5: (0.5/2)² = -12.04 dB
        // 11 kHz is above the new Nyquist: a naive decimator would alias it to 5 kHz.
        #expect(toneLevel(middle, frequency: 5000) < -70)
        #expect(toneLevel(middle, frequency: 11_000 - 8000) < -70)
    }

    @Test("the block reader yields the one-shot decode: bit for bit at 16 kHz, within 1e-4 when resampling")
    func blockReaderMatchesOneShot() throws {
        for (name, tolerance) in [("cry_ios_tired.flac", Float(0)), ("tones_44k1_stereo.wav", Float(1e-4))] {
            let whole = try AudioFile.read(path: Fixtures.path(name))
            for frames in [1, 999, 1600, 100_000] {
                let reader = try AudioFileReader(path: Fixtures.path(name))
                var blocks: [Float] = []
                while let b = reader.next(frames: frames) { blocks += b }
                #expect(reader.next(frames: frames) == nil)
                #expect(abs(blocks.count - whole.count) <= 1, "\(name) in blocks of \(frames): \(blocks.count) vs \(whole.count)")
                let n = min(blocks.count, whole.count)
                let worst = zip(blocks[0..<n], whole[0..<n]).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= tolerance, "\(name) in blocks of \(frames): max |Δ| \(worst)")
            }
        }
    }

    @Test("missing and non-audio files give an error naming the file")
    func badFiles() throws {
        #expect(throws: CaptureError.cannotReadFile(path: "/nonexistent.wav", reason: "no such file")) {
            try AudioFile.read(path: "/nonexistent.wav")
        }
        let junk = FileManager.default.temporaryDirectory.appendingPathComponent("junk-\(getpid()).wav")
        try Data("definitely not audio".utf8).write(to: junk)
        do {
            _ = try AudioFile.read(path: junk.path)
            Issue.record("junk decoded as audio")
        } catch {
            #expect(error.description.contains(junk.path))
        }
    }

    @Test("the file source streams every sample once, in order, with sample indices")
    func fileSourceStreams() async throws {
        let path = Fixtures.path("cry_ios_tired.flac")
        let expected = try AudioFile.read(path: path)
        var got: [Float] = [], sawOpen = false
        for await event in FileAudioSource(path: path, chunkSize: 1000).events() {
            switch event {
            case let .audio(chunk):
                #expect(chunk.startIndex == Int64(got.count))
                got += chunk.samples
            case .opened: sawOpen = true
            default: Issue.record("unexpected \(event)")
            }
        }
        #expect(sawOpen)
        #expect(got == expected)
    }
}
