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
