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

extension YAMNetModel {
    /// File name of the embedded YAMNet body (converted from Google's yamnet.tflite, Apache-2.0).
    public static let embeddedName = "yamnet.safetensors"

    public static func embedded(verifySelfTest: Bool = true) throws(ModelError) -> YAMNetModel {
        guard let dir = ResourceLocator.resourceDirectory(),
              FileManager.default.isReadableFile(atPath: dir + "/" + embeddedName) else { throw .embeddedModelMissing }
        return try load(path: dir + "/" + embeddedName, verifySelfTest: verifySelfTest)
    }
}

extension EmbeddingHead {
    /// File name of the embedded cry head on YAMNet embeddings.
    public static let embeddedName = "deepinfant-cry-head.safetensors"

    public static func embedded(verifySelfTest: Bool = true) throws(ModelError) -> EmbeddingHead {
        guard let dir = ResourceLocator.resourceDirectory(),
              FileManager.default.isReadableFile(atPath: dir + "/" + embeddedName) else { throw .embeddedModelMissing }
        return try load(path: dir + "/" + embeddedName, verifySelfTest: verifySelfTest)
    }
}
