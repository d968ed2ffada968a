/// Reads a model file's tensors for a loader: each by name, dtype and shape, finite, and remembers which
/// were read so that a tensor the architecture does not use is refused (`rejectUnused`). One reader for
/// the YAMNet body and the cry head.
struct TensorReader {
    let file: SafeTensorsFile
    private(set) var used: Set<String> = []

    init(_ file: SafeTensorsFile) { self.file = file }

    /// The document in `__metadata__.deepinfant`, decoded as `T` (errors name the key).
    static func metadata<T: Decodable>(_ type: T.Type, in file: SafeTensorsFile) throws(ModelError) -> T {
        guard let json = file.metadata[ModelMetadata.metadataKey] else {
            throw .missingMetadata(key: "__metadata__.\(ModelMetadata.metadataKey)")
        }
        return try MetadataDecoding.decode(T.self, json: json)
    }

    /// An `F32` tensor of exactly `shape`, every value finite.
    mutating func floats(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] {
        guard let t = file.tensors[name] else { throw .missingTensor(name: name) }
        guard t.dtype == "F32" else { throw .unsupportedDType(tensor: name, dtype: t.dtype) }
        guard t.shape == shape else { throw .shapeMismatch(tensor: name, expected: shape, actual: t.shape) }
        let v = try file.floats(name)
        if let bad = v.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteWeight(tensor: name, index: bad) }
        used.insert(name)
        return v
    }

    mutating func markUsed(_ name: String) { used.insert(name) }

    func rejectUnused() throws(ModelError) {
        if let extra = file.tensors.keys.sorted().first(where: { !used.contains($0) }) { throw .unexpectedTensor(name: extra) }
    }
}
