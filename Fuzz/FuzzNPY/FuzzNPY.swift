import Features
import Foundation
import FuzzSupport

/// Any bytes as an .npy file (`features` output, feedback embeddings): an array or an error.
@_cdecl("FuzzNPY_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv) { bytes in
        guard let a = try? NPYFile.decode(Data(bytes)) else { return }
        _ = NPYFile.encode(a)
    }
}
