import FuzzSupport
import Inference

/// Any bytes as a model file (safetensors header, JSON metadata, tensors, self-test): loading must end in
/// a model or a `ModelError`, never a crash, a hang or a leak.
@_cdecl("FuzzModelFile_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv) { bytes in
        _ = try? AnyModel.load(bytes: bytes, source: "fuzz", verifySelfTest: true)
    }
}
