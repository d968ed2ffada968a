import Foundation

/// A validated model: metadata, folded weights and the self-test vector. Immutable and `Sendable`, so
/// one bundle can be shared by several `CRNNEngine`s (each engine owns its scratch buffers).
///
/// Loading checks, in order: the safetensors container, the metadata document, the feature
/// parameters (must be producible by the `Features` front end), the tensor set and shapes against the
/// declared architecture, finite weights, and finally the self-test (the exporter's expected
/// probabilities for `selftest.input`, within `selftest.tolerance`). Any failure is a `ModelError`;
/// nothing in a model file can crash the process.
public struct ModelBundle: Sendable {
    public let metadata: ModelMetadata
    let weights: CRNNWeights
    /// Learnable parameters (all tensors except batch-norm running statistics and `selftest.input`).
    public let parameterCount: Int
    /// Where it came from (a path, `embedded:<file>` for a model shipped in the executable, or "memory").
    public let source: String
    /// File size in bytes.
    public let byteCount: Int
    /// `selftest.input`: raw log-mel dB `[selfTestFrames][n_mels]`.
    public let selfTestInput: [Float]
    public let selfTestFrames: Int

    public var labels: [String] { metadata.labels }

    /// Loads and validates a model file. `verifySelfTest: false` skips only the self-test (for
    /// `model inspect`, which reports the self-test result instead of refusing).
    public static func load(path: String, verifySelfTest: Bool = true) throws(ModelError) -> ModelBundle {
        let file = try SafeTensorsFile(contentsOf: path)
        return try ModelBundle(file: file, source: path, verifySelfTest: verifySelfTest)
    }

    /// Loads and validates a model from its bytes.
    public static func load(bytes: [UInt8], source: String = "memory", verifySelfTest: Bool = true) throws(ModelError) -> ModelBundle {
        let file = try SafeTensorsFile(bytes: bytes)
        return try ModelBundle(file: file, source: source, verifySelfTest: verifySelfTest)
    }

    init(file: SafeTensorsFile, source: String, verifySelfTest: Bool) throws(ModelError) {
        guard let json = file.metadata[ModelMetadata.metadataKey] else {
            throw .missingMetadata(key: "__metadata__.\(ModelMetadata.metadataKey)")
        }
        let meta = try ModelMetadata.decode(json: json)
        try meta.validate()
        let arch = meta.architecture
        // Self-test input: present, F32, [frames, n_mels] with a usable frame count.
        let stName = meta.selftest.inputTensor
        guard let st = file.tensors[stName] else { throw .missingTensor(name: stName) }
        guard st.dtype == "F32" else { throw .unsupportedDType(tensor: stName, dtype: st.dtype) }
        guard st.shape.count == 2, st.shape[1] == arch.nMels, (arch.minimumFrames...10_000).contains(st.shape[0]) else {
            throw .shapeMismatch(tensor: stName, expected: [meta.window.frames, arch.nMels], actual: st.shape)
        }
        let stValues = try file.floats(stName)
        if let bad = stValues.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteWeight(tensor: stName, index: bad) }

        let scratch = CRNNEngine.scratchSizes(arch: arch, frames: max(meta.window.frames, st.shape[0])).total
        guard scratch <= CRNNEngine.maxScratchFloats else {
            throw .invalidMetadata(key: "architecture", reason: "needs \(scratch / 262_144) MiB of scratch memory per window (limit 1024 MiB)")
        }
        self.weights = try CRNNWeights(file: file, arch: arch)
        self.metadata = meta
        self.parameterCount = file.tensors.values
            .filter { $0.name != stName && !$0.name.hasSuffix(".running_mean") && !$0.name.hasSuffix(".running_var") }
            .reduce(0) { $0 + $1.elementCount }
        self.source = source
        self.byteCount = file.bytes.count
        self.selfTestInput = stValues
        self.selfTestFrames = st.shape[0]
        if verifySelfTest {
            let r = runSelfTest()
            guard r.passed else { throw .selfTestFailed(maxDelta: r.maxDelta, tolerance: r.tolerance) }
        }
    }

    /// Result of running `selftest.input` through the engine.
    public struct SelfTestResult: Sendable, Equatable, Codable {
        public var passed: Bool
        public var maxDelta: Double
        public var tolerance: Double
        public var expected: [Double]
        public var actual: [Double]
    }

    /// Runs the self-test vector and compares with the exporter's expectation.
    public func runSelfTest(backend: MatMulBackend = .openBLAS) -> SelfTestResult {
        let engine = CRNNEngine(model: self, maxFrames: selfTestFrames, backend: backend)
        let expected = metadata.selftest.expected
        let actual: [Double]
        do {
            actual = try engine.probabilities(features: selfTestInput, frames: selfTestFrames).map(Double.init)
        } catch {
            return SelfTestResult(passed: false, maxDelta: .infinity, tolerance: metadata.selftest.tolerance, expected: expected, actual: [])
        }
        let finite = actual.count == expected.count && actual.allSatisfy(\.isFinite)
        let delta = finite ? (zip(expected, actual).map { abs($0 - $1) }.max() ?? .infinity) : .infinity
        return SelfTestResult(passed: delta <= metadata.selftest.tolerance, maxDelta: delta,
                              tolerance: metadata.selftest.tolerance, expected: expected, actual: actual)
    }
}
