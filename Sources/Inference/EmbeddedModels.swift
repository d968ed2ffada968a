import Foundation

extension ModelBundle {
    /// File name of the embedded cry detector (task "cry", labels ["not_cry", "cry"]) used by the cry gate.
    public static let embeddedCryModelName = "deepinfant-cry.safetensors"

    /// The cry detector shipped with the executable, beside the default reason model.
    public static func embeddedCryDetector(verifySelfTest: Bool = true) throws(ModelError) -> ModelBundle {
        guard let dir = ResourceLocator.resourceDirectory(),
              FileManager.default.isReadableFile(atPath: dir + "/" + embeddedCryModelName) else { throw .embeddedModelMissing }
        return try load(path: dir + "/" + embeddedCryModelName, verifySelfTest: verifySelfTest)
    }
}
