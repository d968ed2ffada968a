import Control
import Crypto
import FuzzSupport

/// Any bytes as a `cmd/model` payload: the signed envelope must decode or be refused with a
/// `ModelUpdateError`; a decoded one's base64 model must not crash the checks that follow it.
@_cdecl("FuzzModelEnvelope_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    // A trusted key the inputs do not hold: every decoded envelope goes through the whole verification.
    let key = try! SigningKeys.TrustedKey(rawRepresentation: Curve25519.Signing.PrivateKey().publicKey.rawRepresentation, source: "fuzz")
    return Fuzz.run(argc, argv) { bytes in
        guard let envelope = try? ModelEnvelope.decode(bytes) else { return }
        _ = try? envelope.verify(trusted: [key])
        _ = try? envelope.verify(trusted: [key], detachedModel: Array(bytes.prefix(64)))
    }
}
