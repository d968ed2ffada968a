import Features
import Inference

/// What a node checks about a signed reason model after the envelope's signature, size and hash: the
/// model-file checks, version and name against the envelope, the task, the front end, the self-test.
/// `deepinfant-edge model verify` runs the same function, so "it verifies" means "a node accepts it".
public enum ModelAcceptance {
    /// `frontEnd`: the log-mel parameters of the node's cry detector (one front end feeds both models).
    public static func check(bytes: [UInt8], envelope: ModelEnvelope, frontEnd: LogMelParameters,
                             source: String) throws(ModelUpdateError) -> ModelBundle {
        let model: ModelBundle
        do { model = try ModelBundle.load(bytes: bytes, source: source, verifySelfTest: false) } catch {
            throw .invalidModel(error)
        }
        guard model.metadata.version == envelope.version else {
            throw .versionMismatch(envelope: envelope.version, model: model.metadata.version)
        }
        if let name = envelope.name, name != model.metadata.name { throw .nameMismatch(envelope: name, model: model.metadata.name) }
        guard model.metadata.task == "reason" else { throw .wrongTask(model.metadata.task) }
        guard model.metadata.features.logMelParameters == frontEnd, model.metadata.architecture.nMels == frontEnd.nMels else {
            throw .incompatibleFeatures("the model's log-mel parameters differ from the cry detector's (\(frontEnd))")
        }
        let selfTest = model.runSelfTest()
        guard selfTest.passed else { throw .invalidModel(.selfTestFailed(maxDelta: selfTest.maxDelta, tolerance: selfTest.tolerance)) }
        return model
    }
}
