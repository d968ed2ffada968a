import Capture
import Foundation
import Testing

/// Audio files deploy/fuzz.sh found that stopped the process; each must now be a `cannotReadFile`.
struct AudioFuzzRegressionTests {
    @Test("a WAV whose header claims a rate libsamplerate cannot convert is refused, streamed or whole")
    func rateOutsideTheResampler() throws {
        let path = Bundle.module.url(forResource: "Fixtures/fuzz-regressions/wav-rate-outside-resampler-range", withExtension: "wav")!.path
        for read in [{ _ = try AudioFileReader(path: path) }, { _ = try AudioFile.read(path: path) }] as [() throws -> Void] {
            do {
                try read()
                Issue.record("the file was accepted")
            } catch let error as CaptureError {
                #expect("\(error)".contains("sample rate"), "\(error)")
            }
        }
    }
}
