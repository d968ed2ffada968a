import Capture
import Foundation
import FuzzSupport

/// Any bytes as an audio file given to classify/detect/tag or `--input`: libsndfile's header handling,
/// then our decode, mono mix and resampling, block by block, to the end.
@_cdecl("FuzzAudioFile_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-audio-\(getpid())").path
    return Fuzz.run(argc, argv) { bytes in
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
        guard let reader = try? AudioFileReader(path: path) else { return }
        var total = 0
        while let block = reader.next(frames: 4096), total < 16_000 * 600 { total += block.count }
    }
}
